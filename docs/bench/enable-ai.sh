#!/bin/bash
# enable-ai.sh URL TOKEN: turn the token's organization's AI interaction logs on
S=$(curl -s -H "Authorization: Bearer $2" $1/api/v1/settings | jq -c '.ai_interaction_logs_enabled=true | del(.ai_interaction_logs_enabled_at)')
curl -s -o /dev/null -w "%{http_code}\n" -X PUT -H "Authorization: Bearer $2" -d "$S" $1/api/v1/settings
