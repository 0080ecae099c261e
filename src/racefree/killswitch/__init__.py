"""The kill switch: the emergency stop (DESIGN section 5)."""
