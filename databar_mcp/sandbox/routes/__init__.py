"""The sandbox API's routes, one module per area of the Databar API."""
