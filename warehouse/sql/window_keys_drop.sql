-- The last window load's call_keys (window_keys_create.sql), dropped once its checks have read
-- them: a connection the run shares (pipelines/resources.py) goes on to the day's models.
DROP TABLE IF EXISTS _window_keys;
