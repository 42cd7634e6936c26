#!/usr/bin/env bash
# A minimal client of the returnee API, written from its published
# description (docs/openapi.json, or GET /v1/openapi.json) and nothing
# else: enroll a device, push one family, pull. Needs curl only.
#
#   bash docs/api-example.sh http://127.0.0.1:8080 ABCD-EFGH-JKMN-PQRS
#
# The code is a field code for torkham (`returnee admin code --role field
# --site torkham`). .ci/run runs this script against a real server.
set -euo pipefail
url=${1:?usage: api-example.sh SERVER_URL ENROLLMENT_CODE}
code=${2:?usage: api-example.sh SERVER_URL ENROLLMENT_CODE}
protocol="x-returnee-protocol: 2"   # sync requests must say it (Health.accepts)
json="content-type: application/json"
uuid() { cat /proc/sys/kernel/random/uuid; }

echo "# GET /v1/health: which protocols the server speaks"
curl -sS --fail-with-body "$url/v1/health"; echo

echo "# POST /v1/enroll: the code for a credential (EnrollRequest -> EnrollResponse)"
device=$(uuid)
enrolled=$(curl -sS --fail-with-body -H "$json" "$url/v1/enroll" \
  -d "{\"protocol\":2,\"device_id\":\"$device\",\"code\":\"$code\",\"device_name\":\"curl example\"}")
echo "$enrolled" | sed 's/"token":"[^"]*"/"token":"(hidden)"/'
token=$(echo "$enrolled" | sed 's/.*"token":"\([^"]*\)".*/\1/')
auth="authorization: Bearer $token"

echo "# POST /v1/sync/push: one family, as a create operation (PushRequest -> PushResponse)"
today=$(date -u +%Y-%m-%d)
curl -sS --fail-with-body -H "$json" -H "$auth" -H "$protocol" "$url/v1/sync/push" -d @- <<JSON; echo
{"ops": [{
  "id": "$(uuid)", "record": "$(uuid)", "device": "$device",
  "at": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "change": {"kind": "create", "fields": {
    "crossing": "torkham", "crossed_on": "$today", "return_type": "deported",
    "departure_province": "PK-KP", "destination_province": "AF-NAN",
    "members": {"males": [1, 0, 0, 1, 0], "females": [0, 1, 0, 1, 0]}}}
}]}
JSON

echo "# GET /v1/sync/pull: everyone else's operations after cursor 0 (PullResponse)"
curl -sS --fail-with-body -H "$auth" -H "$protocol" "$url/v1/sync/pull?after=0&limit=100"; echo
