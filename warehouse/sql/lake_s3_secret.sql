-- An s3:// WAREHOUSE_DATA_PATH (warehouse/lake.py load_extensions): the connection's S3
-- credentials, from the AWS SDK's own environment variables, bound as values. TEMPORARY: the
-- secret lives in this connection's memory only, never on disk.
CREATE OR REPLACE TEMPORARY SECRET warehouse_s3 (
    TYPE s3,
    KEY_ID $key_id,
    SECRET $secret,
    SESSION_TOKEN $session_token,
    REGION $region,
    ENDPOINT $endpoint,
    URL_STYLE $url_style,
    USE_SSL $use_ssl
);
