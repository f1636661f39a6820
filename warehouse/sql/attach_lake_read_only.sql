-- The DuckLake for reading only (Warehouse._attach_lake with read_only=True); as attach_lake.sql.
ATTACH $target AS warehouse (DATA_PATH $data_path, READ_ONLY);
