"""Independent reader for Avro files the collector published to an object
store: lists the objects under a prefix with the vendor's own client (boto3
for S3, google-cloud-storage for GCS), reads each with fastavro, and prints
one JSON line per object: its name and the `location` of every record.

    python3 tests/read_store.py s3 http://127.0.0.1:PORT BUCKET PREFIX
    python3 tests/read_store.py gcs http://127.0.0.1:PORT BUCKET PREFIX
    python3 tests/read_store.py s3-create http://127.0.0.1:PORT BUCKET
    python3 tests/read_store.py gcs-create http://127.0.0.1:PORT BUCKET
"""
import io
import json
import sys

import fastavro

kind, endpoint, bucket = sys.argv[1], sys.argv[2], sys.argv[3]
prefix = sys.argv[4] if len(sys.argv) > 4 else ""


def s3_client():
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def gcs_client():
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(
        project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint}
    )


def objects():
    if kind == "s3":
        client = s3_client()
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for o in page.get("Contents", []):
                yield o["Key"], client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
    else:
        client = gcs_client()
        for blob in client.list_blobs(bucket, prefix=prefix):
            yield blob.name, blob.download_as_bytes()


if kind == "s3-create":
    s3_client().create_bucket(Bucket=bucket)
elif kind == "gcs-create":
    gcs_client().create_bucket(bucket)
else:
    for name, data in sorted(objects()):
        reader = fastavro.reader(io.BytesIO(data))
        assert reader.writer_schema["type"] == "record"
        locations = [r.get("location") for r in reader]
        print(json.dumps({"name": name, "locations": locations}))
