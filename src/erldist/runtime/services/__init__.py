"""The system processes every node has, each a service process of its own."""
