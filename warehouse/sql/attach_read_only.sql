-- The warehouse file for reading only (Warehouse._attach with read_only=True).
ATTACH $path AS warehouse (READ_ONLY);
