#!/usr/bin/env python3
"""AWS side of sluice's end-to-end test (crates/sluice/tests/e2e_kubernetes.rs), against moto.

  e2e_aws.py setup --endpoint URL --stream S --firehose F --bucket B
      creates the Kinesis stream (1 shard, waits until ACTIVE), the S3 bucket and a DirectPut Firehose
      delivery stream into it.
  e2e_aws.py kinesis --endpoint URL --stream S
      prints {"records": [{"data": TEXT, "partition_key": K}, ...]}: every record of every shard.
  e2e_aws.py deliver --endpoint URL --stream S --firehose F --bucket B
      plays the Kinesis -> Firehose source moto accepts but never delivers: puts the stream's records into
      the delivery stream (which writes them to S3) and prints {"objects": {KEY: TEXT, ...}}.
Credentials and region come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION).
"""
import argparse
import json
import time

import boto3


def client(kind, endpoint):
    return boto3.client(kind, endpoint_url=endpoint)


def setup(a):
    k = client("kinesis", a.endpoint)
    k.create_stream(StreamName=a.stream, ShardCount=1)
    for _ in range(100):
        if k.describe_stream(StreamName=a.stream)["StreamDescription"]["StreamStatus"] == "ACTIVE":
            break
        time.sleep(0.1)
    s3 = client("s3", a.endpoint)
    s3.create_bucket(Bucket=a.bucket)
    fh = client("firehose", a.endpoint)
    fh.create_delivery_stream(
        DeliveryStreamName=a.firehose,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose-e2e",
            "BucketARN": f"arn:aws:s3:::{a.bucket}",
            "Prefix": "pii/",
        },
    )
    print(json.dumps({"ok": True}))


def read_stream(endpoint, stream):
    k = client("kinesis", endpoint)
    out = []
    shards = k.list_shards(StreamName=stream)["Shards"]
    for sh in shards:
        it = k.get_shard_iterator(StreamName=stream, ShardId=sh["ShardId"],
                                  ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            r = k.get_records(ShardIterator=it, Limit=10000)
            out.extend(r["Records"])
            if not r["Records"]:
                break
            it = r.get("NextShardIterator")
    return out


def kinesis(a):
    recs = read_stream(a.endpoint, a.stream)
    print(json.dumps({"records": [{"data": r["Data"].decode("utf-8", "replace"),
                                   "partition_key": r["PartitionKey"]} for r in recs]}))


def deliver(a):
    recs = read_stream(a.endpoint, a.stream)
    fh = client("firehose", a.endpoint)
    for i in range(0, len(recs), 500):
        batch = [{"Data": r["Data"]} for r in recs[i:i + 500]]
        fh.put_record_batch(DeliveryStreamName=a.firehose, Records=batch)
    s3 = client("s3", a.endpoint)
    objects = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=a.bucket):
        for o in page.get("Contents", []):
            body = s3.get_object(Bucket=a.bucket, Key=o["Key"])["Body"].read()
            objects[o["Key"]] = body.decode("utf-8", "replace")
    print(json.dumps({"objects": objects}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["setup", "kinesis", "deliver"])
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--stream", required=True)
    ap.add_argument("--firehose", default="application1-pii-to-s3")
    ap.add_argument("--bucket", default="application1-pii-restricted")
    a = ap.parse_args()
    {"setup": setup, "kinesis": kinesis, "deliver": deliver}[a.cmd](a)


if __name__ == "__main__":
    main()
