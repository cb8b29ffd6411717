#!/usr/bin/env bash
# Builds every function (release) and deploys the stack with SAM.
#
#   bash infra/deploy.sh            the first time: sam deploy --guided when run
#                                   in a terminal, else the variables below;
#                                   then: infra/samconfig.toml, no questions
#   bash infra/deploy.sh --guided   ask again (rewrites infra/samconfig.toml)
#
# Non-interactive first deploy (CI, scripts):
#   AWS_REGION          the region (required)
#   ROLLCALL_STACK      stack name (default: rollcall)
#   ROLLCALL_PARAMETERS template parameters, e.g.
#                       "DeletionProtection=true PageOrigin=https://rollcall.example.com"
#                       (Architecture=x86_64 here also builds x86_64; arm64 by default)
# The answers are saved in infra/samconfig.toml (git-ignored).
#
# Needs AWS credentials (a profile, SSO, or access keys) allowed to create
# the stack: CloudFormation, Lambda, API Gateway, DynamoDB, IAM roles,
# CloudWatch Logs, EventBridge, and SAM's managed S3 bucket for artifacts.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
setup_system python3:python3
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  setup_system ensurepip:python3-venv
fi
setup_rust
. infra/tools.sh
infra_tools

# Before anything slow: are there credentials at all, and do they work?
require_aws_credentials "deploy"

config="$PWD/infra/samconfig.toml"
build_dir="$PWD/infra/.aws-sam/build"
configured=false
if [ -f "$config" ] && grep -q '^stack_name' "$config"; then
  configured=true
fi
guided=false
if [ "${1:-}" = "--guided" ] || { ! $configured && [ -t 0 ] && [ -z "${ROLLCALL_STACK:-}" ]; }; then
  guided=true
fi
# sam deploy insists that an explicit --config-file exists.
[ -f "$config" ] || printf 'version = 0.1\n' >"$config"

# The functions' CPU: the deployed parameter, or the one asked for now.
arch=$( { grep -oE 'Architecture=[^ ]+' "$config" || true; } | tail -n1 | tr -dc 'a-z0-9_=' | cut -d= -f2)
case "${ROLLCALL_PARAMETERS:-}" in *Architecture=x86_64*) arch=x86_64 ;; *Architecture=arm64*) arch=arm64 ;; esac
arch=${arch:-arm64}
arch_flag=()
[ "$arch" = arm64 ] && arch_flag=(--arm64)

# One cargo invocation for all functions (dependencies compiled once, the
# binaries' LTO links in parallel); sam build then finds them built.
export CARGO_TARGET_DIR=${ROLLCALL_LAMBDA_TARGET_DIR:-$PWD/target/lambda-release}
echo "rollcall: building the functions (release, $arch; the first build takes ~20 min on 2 cores) ..." >&2
(cd functions && cargo lambda build --release "${arch_flag[@]}" --features lambda --locked)
sam build -t infra/template.yaml --build-dir "$build_dir" --parameter-overrides "Architecture=$arch"

deploy=(sam deploy --template-file "$build_dir/template.yaml" --config-file "$config")
if $guided; then
  echo "rollcall: answer Architecture with $arch (what was just built)." >&2
  "${deploy[@]}" --guided --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
    --parameter-overrides "Architecture=$arch ${ROLLCALL_PARAMETERS:-}"
elif $configured; then
  "${deploy[@]}" --no-confirm-changeset --no-fail-on-empty-changeset
else
  : "${AWS_REGION:?set AWS_REGION (or run in a terminal for a guided first deploy)}"
  "${deploy[@]}" --stack-name "${ROLLCALL_STACK:-rollcall}" --region "$AWS_REGION" \
    --resolve-s3 --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
    --parameter-overrides "Architecture=$arch ${ROLLCALL_PARAMETERS:-}" \
    --no-confirm-changeset --no-fail-on-empty-changeset --save-params
fi
echo "rollcall: deployed; open PageUrl from the stack outputs above." >&2
