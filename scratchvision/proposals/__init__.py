"""Region proposals before learned ones: sliding windows and Selective Search."""
