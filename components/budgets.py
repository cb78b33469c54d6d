"""AWS Budgets: the seed's monthly cost thresholds, alerting the alert topic.

000_6de71234cc3057c0.txt, cost monitoring: backup costs $10K a month, data transfer $5K, storage
$15K. Each budget is a monthly COST budget filtered on Cost Explorer dimensions (``Service``,
``UsageTypeGroup``...), notifying the SNS topic when actual spend passes 80% and when the
forecast passes 100%, so the forecast warns before the month is lost. Budgets are account-wide
and AWS Budgets is a global service: the primary stack owns them.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
from pydantic import Field

from components._common import PACKAGE, ComponentArgs, StrInput, child_opts, require_provider

ACTUAL_PERCENT = 80
FORECAST_PERCENT = 100


class CostBudget(ComponentArgs):
    key: str = Field(pattern=r"^[a-z][a-z0-9-]{1,40}[a-z0-9]$")
    limit_usd: int = Field(ge=1)
    cost_filters: dict[str, list[str]] = Field(default_factory=dict)


class CostBudgetsArgs(ComponentArgs):
    platform: str = Field(min_length=1)
    account_id: str = Field(pattern=r"^\d{12}$")
    budgets: list[CostBudget] = Field(min_length=1)
    topic_arn: StrInput
    tags: dict[str, str] = Field(default_factory=dict)


class CostBudgets(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: CostBudgetsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PACKAGE}:cost:CostBudgets", name, None, opts)
        provider = require_provider(opts, "CostBudgets")
        self.budgets: dict[str, aws.budgets.Budget] = {}
        for budget in args.budgets:
            self.budgets[budget.key] = aws.budgets.Budget(
                f"{name}-{budget.key}",
                name=f"{args.platform}-dr-{budget.key}",
                account_id=args.account_id,
                budget_type="COST",
                time_unit="MONTHLY",
                limit_amount=f"{budget.limit_usd}.0",
                limit_unit="USD",
                cost_filters=[
                    {"name": dimension, "values": values}
                    for dimension, values in sorted(budget.cost_filters.items())
                ],
                notifications=[
                    {
                        "comparison_operator": "GREATER_THAN",
                        "notification_type": "ACTUAL",
                        "threshold": ACTUAL_PERCENT,
                        "threshold_type": "PERCENTAGE",
                        "subscriber_sns_topic_arns": [args.topic_arn],
                    },
                    {
                        "comparison_operator": "GREATER_THAN",
                        "notification_type": "FORECASTED",
                        "threshold": FORECAST_PERCENT,
                        "threshold_type": "PERCENTAGE",
                        "subscriber_sns_topic_arns": [args.topic_arn],
                    },
                ],
                tags=args.tags,
                opts=child_opts(self, provider),
            )
        self.register_outputs({})
