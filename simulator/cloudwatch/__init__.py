"""AWS Lambda's CloudWatch logs: reading them into a table of invocations."""
