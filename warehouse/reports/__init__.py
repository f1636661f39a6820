"""Read-only report queries over the warehouse, one SQL file each (Warehouse.report)."""
