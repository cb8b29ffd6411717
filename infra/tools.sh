# shellcheck shell=bash
# Sourced by infra/check.sh, deploy.sh and teardown.sh: installs the AWS
# tooling on first use (pinned, so lint results do not change under us) and
# puts it on PATH. Everything lives in private virtualenvs under .venv/
# (git-ignored), next to the one scripts/test.sh keeps moto in:
#   .venv/infra    aws-sam-cli, cfn-lint, cargo-lambda (which brings zig,
#                  the cross-linker for arm64)
#   .venv/checkov  checkov, alone: it pins boto3 to a version too old for
#                  current SAM CLI, and in one environment pip would settle
#                  on a year-old SAM CLI and cfn-lint.
# Needs python3 with venv (scripts/setup.sh installs it) and Rust.

SAM_CLI_VERSION=1.170.0
CFN_LINT_VERSION=1.58.0
CARGO_LAMBDA_VERSION=1.9.2
CHECKOV_VERSION=3.3.30

# infra_venv DIR PACKAGE==VERSION...: a virtualenv with exactly these.
infra_venv() {
  local dir=$1
  shift
  if [ ! -x "$dir/bin/pip" ]; then
    python3 -m venv --clear "$dir"
  fi
  local have
  have=$("$dir/bin/pip" freeze --disable-pip-version-check 2>/dev/null | tr 'A-Z_' 'a-z-')
  local pkg missing=()
  for pkg in "$@"; do
    grep -qxF "$(printf '%s' "$pkg" | tr 'A-Z_' 'a-z-')" <<<"$have" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "rollcall: installing ${missing[*]} into $dir ..." >&2
    "$dir/bin/pip" install -q --disable-pip-version-check "${missing[@]}" >&2
  fi
}

infra_tools() {
  local root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  infra_venv "$root/.venv/infra" "aws-sam-cli==$SAM_CLI_VERSION" \
    "cfn-lint==$CFN_LINT_VERSION" "cargo-lambda==$CARGO_LAMBDA_VERSION"
  infra_venv "$root/.venv/checkov" "checkov==$CHECKOV_VERSION"
  export PATH="$root/.venv/infra/bin:$PATH"
  # Used by the scripts that source this file.
  # shellcheck disable=SC2034
  CHECKOV="$root/.venv/checkov/bin/checkov"
  # No usage reports from SAM CLI; nothing here phones home.
  export SAM_CLI_TELEMETRY=0
}

# Fails, saying what to do, unless AWS credentials are configured (and,
# when AWS is reachable, valid). Prints the account and region.
require_aws_credentials() {
  local out
  # boto3 reads AWS_DEFAULT_REGION; SAM CLI and the AWS SDKs also AWS_REGION.
  if [ -n "${AWS_REGION:-}" ] && [ -z "${AWS_DEFAULT_REGION:-}" ]; then
    export AWS_DEFAULT_REGION="$AWS_REGION"
  fi
  if ! out=$(python3_infra - <<'PY' 2>&1
import sys
import boto3
from botocore.exceptions import BotoCoreError, ClientError

session = boto3.Session()
if session.get_credentials() is None:
    sys.exit("no AWS credentials found")
if not session.region_name:
    sys.exit("no AWS region set")
try:
    sts = session.client("sts", config=boto3.session.Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 1}))
    who = sts.get_caller_identity()
except (BotoCoreError, ClientError) as e:
    sys.exit(f"AWS rejected or could not check the credentials: {e}")
print(f"account {who['Account']} ({who['Arn']}), region {session.region_name}")
PY
  ); then
    cat >&2 <<EOF
rollcall: cannot $1: $out.
  Configure AWS credentials and a region first, e.g.
    export AWS_PROFILE=my-profile AWS_REGION=us-east-1      (a profile from ~/.aws/config, or aws sso login)
  or
    export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... [AWS_SESSION_TOKEN=...] AWS_REGION=us-east-1
EOF
    return 1
  fi
  echo "rollcall: using AWS $out" >&2
}

python3_infra() {
  "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv/infra/bin/python" "$@"
}
