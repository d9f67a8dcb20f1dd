"""helloworld: greets the caller. {"name": "x"} -> {"message": "Hello, x!"}.

{"raise": "msg"} makes the handler raise ValueError("msg"): it exercises the
runtime's error response.
"""


def handle(event):
    if "raise" in event:
        raise ValueError(event["raise"])
    name = event.get("name", "world")
    return {"message": "Hello, %s!" % name, "length": len(name)}
