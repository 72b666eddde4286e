"""The built-in skills; importing this package registers them."""
