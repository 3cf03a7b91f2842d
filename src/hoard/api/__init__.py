"""Network APIs over a node: gRPC (`api.grpc`) and REST (`api.rest`)."""
