"""Where backups live: the S3 vault and the GCS mirror, behind one small interface."""
