"""Hardware components: each a validated spec plus pure cost functions for the ops it runs."""
