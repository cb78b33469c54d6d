"""Kubernetes state: what the backup of a namespace stores and how a restore puts it back.

- ``api``: JSON to the API server (discovery, paginated lists, create, server-side apply), and how
  ops reaches it (kubeconfig, in-cluster service account);
- ``reader``: a namespace read the way the backup stores it, at one resourceVersion;
- ``clean``: what only a server sets, stripped; what a controller recreates, left out;
- ``order``: the restore priority list, a reason per entry;
- ``sealing``: Secrets envelope-encrypted with a KMS data key;
- ``archive``: the one-object JSON-lines format;
- ``compare``: a restored namespace checked against the original, object by object.
"""
