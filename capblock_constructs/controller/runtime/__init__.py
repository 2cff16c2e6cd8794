"""The controller's run-time code: the Lambda handler and the phase rule it runs.

Everything under this package is shipped as the Lambda function's code asset,
so it imports only the standard library and boto3 (which the Lambda Python
runtime provides), never the AWS CDK or the rest of capblock_constructs.
"""
