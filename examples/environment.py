"""The documentation account and the example reservation committed in cdk.context.json."""

from aws_cdk import Environment

EXAMPLE_ACCOUNT = "123456789012"
EXAMPLE_REGION = "us-east-2"
EXAMPLE_RESERVATION_ID = "cr-0a1b2c3d4e5f67890"
"""A fictional p5.48xlarge block in us-east-2a, served from cdk.context.json.

Replace it with your own reservation ID and account to deploy for real.
"""

EXAMPLE_ENV = Environment(account=EXAMPLE_ACCOUNT, region=EXAMPLE_REGION)
