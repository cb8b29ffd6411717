#!/usr/bin/env bash
# Deletes the stack deploy.sh created (sam delete), with its functions, APIs,
# log groups and SAM's uploaded artifacts.
#
#   bash infra/teardown.sh                 the stack named in infra/samconfig.toml
#   bash infra/teardown.sh --delete-data   also when its DynamoDB tables are
#                                          deletion-protected: turns the
#                                          protection off first, then deletes
#                                          them with the stack (their data is
#                                          kept 35 days as a system backup,
#                                          point-in-time recovery being on)
# ROLLCALL_STACK / AWS_REGION name another stack.
#
# Kept on purpose: the region's API Gateway CloudWatch role (an account
# setting other APIs may use by now; see infra/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
delete_data=false
case "${1:-}" in
  --delete-data) delete_data=true ;;
  "") ;;
  *) echo "usage: bash infra/teardown.sh [--delete-data]" >&2; exit 2 ;;
esac
. infra/tools.sh
infra_tools

config="$PWD/infra/samconfig.toml"
setting() { # the value of KEY in infra/samconfig.toml, if any
  [ -f "$config" ] || return 0
  sed -n "s/^$1 *= *\"\(.*\)\"/\1/p" "$config" | head -n1
}
stack=${ROLLCALL_STACK:-$(setting stack_name)}
region=${AWS_REGION:-$(setting region)}
if [ -z "$stack" ]; then
  echo "rollcall: no stack to delete: infra/samconfig.toml names none (deploy first, or set ROLLCALL_STACK)" >&2
  exit 1
fi
if [ -n "$region" ]; then
  export AWS_REGION="$region" AWS_DEFAULT_REGION="$region"
fi

require_aws_credentials "delete the stack $stack"
region=$(python3_infra -c 'import boto3; print(boto3.Session().region_name)')

# Deletion protection: CloudFormation cannot delete a protected table, and
# would stop halfway. Turn it off first, if asked to, with the stack's own
# template and every other parameter as deployed.
protected=$(python3_infra - "$stack" <<'PY'
import sys
import boto3
stack = boto3.client("cloudformation").describe_stacks(StackName=sys.argv[1])["Stacks"][0]
params = {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters", [])}
# Store is NoEcho: it reads "****", unless it is the default.
uses_dynamodb = params.get("Store") in ("dynamodb", None) or any(
    o["OutputKey"] == "UsersTableName" for o in stack.get("Outputs", [])
)
print("true" if uses_dynamodb and params.get("DeletionProtection") == "true" else "false")
PY
)
if [ "$protected" = true ]; then
  if ! $delete_data; then
    cat >&2 <<EOF
rollcall: the stack $stack keeps its users and sessions in deletion-protected
DynamoDB tables; nothing was deleted. To delete them with the stack, run
  bash infra/teardown.sh --delete-data
EOF
    exit 1
  fi
  echo "rollcall: turning off the tables' deletion protection ..." >&2
  python3_infra - "$stack" <<'PY'
import sys
import boto3
cf = boto3.client("cloudformation")
stack = cf.describe_stacks(StackName=sys.argv[1])["Stacks"][0]
params = [
    {"ParameterKey": p["ParameterKey"], "ParameterValue": "false"}
    if p["ParameterKey"] == "DeletionProtection"
    else {"ParameterKey": p["ParameterKey"], "UsePreviousValue": True}
    for p in stack["Parameters"]
]
cf.update_stack(
    StackName=sys.argv[1],
    UsePreviousTemplate=True,
    Parameters=params,
    Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
)
cf.get_waiter("stack_update_complete").wait(StackName=sys.argv[1])
PY
fi

sam delete --stack-name "$stack" --region "$region" --no-prompts
echo "rollcall: stack $stack deleted." >&2
