"""How to time a layer or a subnet on a backend; returns `Measurement`, never a float."""
