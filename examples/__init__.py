"""Example stacks that app.py synthesizes; each module is one deployable pattern."""
