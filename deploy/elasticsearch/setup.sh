#!/usr/bin/env bash
# Install the ILM policy and index template for Bananas logs (tier 3).
# Usage: ES_URL=https://host:9200 [ES_API_KEY=...|ES_USER=... ES_PASSWORD=...] [PREFIX=bananas-logs] \
#        [HOT_DAYS=7] [DELETE_DAYS=30] ./setup.sh
# Works with Elasticsearch 8 and OpenSearch (OpenSearch uses ISM instead of ILM: set OPENSEARCH=1).
set -euo pipefail
ES_URL="${ES_URL:-http://localhost:9200}"
PREFIX="${PREFIX:-bananas-logs}"
HOT_DAYS="${HOT_DAYS:-7}"
DELETE_DAYS="${DELETE_DAYS:-30}"
AUTH=()
if [ -n "${ES_API_KEY:-}" ]; then AUTH=(-H "Authorization: ApiKey ${ES_API_KEY}");
elif [ -n "${ES_USER:-}" ]; then AUTH=(-u "${ES_USER}:${ES_PASSWORD:-}"); fi
put() { curl -fsS -X PUT "${AUTH[@]}" -H 'Content-Type: application/json' "$ES_URL/$1" -d "$2"; echo; }

if [ -z "${OPENSEARCH:-}" ]; then
put "_ilm/policy/${PREFIX}-policy" '{
  "policy": {"phases": {
    "hot":    {"actions": {"set_priority": {"priority": 100}}},
    "warm":   {"min_age": "'"${HOT_DAYS}"'d", "actions": {"forcemerge": {"max_num_segments": 1}, "set_priority": {"priority": 50}}},
    "delete": {"min_age": "'"${DELETE_DAYS}"'d", "actions": {"delete": {}}}
  }}
}'
SETTINGS='"index.lifecycle.name": "'"${PREFIX}"'-policy",'
else
put "_plugins/_ism/policies/${PREFIX}-policy" '{
  "policy": {"description": "bananas logs", "default_state": "hot", "ism_template": {"index_patterns": ["'"${PREFIX}"'-*"]},
    "states": [
      {"name": "hot", "actions": [], "transitions": [{"state_name": "delete", "conditions": {"min_index_age": "'"${DELETE_DAYS}"'d"}}]},
      {"name": "delete", "actions": [{"delete": {}}], "transitions": []}
    ]}
}'
SETTINGS=''
fi

put "_index_template/${PREFIX}" '{
  "index_patterns": ["'"${PREFIX}"'-*"],
  "template": {
    "settings": {'"${SETTINGS}"' "number_of_shards": 1, "number_of_replicas": 1, "refresh_interval": "5s"},
    "mappings": {
      "dynamic_templates": [{"strings": {"match_mapping_type": "string", "mapping": {"type": "keyword", "ignore_above": 1024}}}],
      "properties": {
        "@timestamp": {"type": "date"}, "level": {"type": "keyword"}, "logger": {"type": "keyword"},
        "message": {"type": "text"}, "error": {"type": "text"}, "traceback": {"type": "text", "index": false},
        "exc_info": {"type": "text", "index": false},
        "job_id": {"type": "keyword"}, "job_name": {"type": "keyword"}, "worker_id": {"type": "keyword"},
        "routing_key": {"type": "keyword"}, "priority": {"type": "integer"}, "attempt": {"type": "integer"},
        "duration_ms": {"type": "float"}, "queue_wait_ms": {"type": "float"}, "retry_delay_s": {"type": "float"},
        "reason": {"type": "keyword"}, "component": {"type": "keyword"}, "log_source": {"type": "keyword"}
      }
    }
  }
}'
echo "installed policy and template for ${PREFIX}-* on ${ES_URL}"
