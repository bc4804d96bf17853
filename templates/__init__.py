"""Templates for generated v1 recipes (installed as ``recipegen.templates``)."""
