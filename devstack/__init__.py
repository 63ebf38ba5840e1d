"""Local stand-ins for development: the demo and the stack it runs on (moto, the fake Slack)."""
