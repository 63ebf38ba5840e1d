"""Thin Bolt listeners: ack, parse into a typed model, call one surface function, answer."""
