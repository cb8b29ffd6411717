#!/usr/bin/env bash
# Checks the AWS template offline (no AWS account, no network to AWS):
#   1. cfn-lint            CloudFormation/SAM schema, references, cycles
#   2. checkov             security policy (each skip is justified inline)
#   3. sam validate --lint SAM's own translation + cfn-lint
#   4. sam build           every function compiled by cargo-lambda for arm64,
#                          each artifact checked to be an aarch64 executable
# scripts/test.sh runs it; alone: bash infra/check.sh
#
# sam build takes the most time. By default it builds as CI should:
#   * debug profile (SAM_BUILD_MODE=debug, without debug info): the
#     release profile's fat LTO with one codegen unit links each of the 8
#     binaries for minutes on 2 cores; deploy.sh builds release.
#   * one `cargo lambda build` for all binaries first, so cargo compiles the
#     shared dependencies once and links the binaries in parallel; sam
#     build's per-function builds then find everything fresh.
#   * a target directory outside the work tree that outlives it
#     ($ROLLCALL_LAMBDA_TARGET_DIR, default ~/.cache/rollcall/lambda-target):
#     CI clones afresh each run, and a warm cache is what keeps this step short.
# ROLLCALL_SAM_BUILD_MODE=release builds exactly as deploy.sh does.
set -euo pipefail
cd "$(dirname "$0")/.."
. infra/tools.sh
infra_tools

template=infra/template.yaml
mode=${ROLLCALL_SAM_BUILD_MODE:-debug}
target_dir=${ROLLCALL_LAMBDA_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rollcall/lambda-target}
mkdir -p "$target_dir"

# Offline: dummy credentials and region, and no instance-metadata lookups.
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline \
  AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN

step() {
  local name=$1 start=$SECONDS
  shift
  echo "rollcall infra: $name ..." >&2
  "$@"
  echo "rollcall infra: $name ok ($((SECONDS - start)) s)" >&2
}

step "cfn-lint" cfn-lint "$template"
step "checkov" "$CHECKOV" -f "$template" --framework cloudformation --compact --quiet --skip-download
step "sam validate --lint" sam validate --lint -t "$template"

build_dir=$(mktemp -d "${TMPDIR:-/tmp}/rollcall-sam-build.XXXXXX")
trap 'rm -rf "$build_dir"' EXIT

export CARGO_TARGET_DIR="$target_dir"
cargo_flags=(--arm64 --features lambda --locked)
if [ "$mode" = release ]; then
  cargo_flags+=(--release)
  unset SAM_BUILD_MODE
else
  export SAM_BUILD_MODE=debug
  # Debug info would make each binary ~10x larger and slower to link.
  export CARGO_PROFILE_DEV_DEBUG=0
fi
step "cargo lambda build ($mode, all functions)" \
  bash -c 'cd functions && cargo lambda build "$@"' _ "${cargo_flags[@]}"
step "sam build ($mode)" sam build -t "$template" --build-dir "$build_dir"

# Every function built, as an arm64 Linux executable.
python3 - "$build_dir" "$template" <<'PY'
import os, re, sys
build, template = sys.argv[1], sys.argv[2]
names = re.findall(r"^  (\w+):\n    Type: AWS::Serverless::Function", open(template).read(), re.M)
assert names, "no functions found in the template"
for name in names:
    path = os.path.join(build, name, "bootstrap")
    with open(path, "rb") as f:
        head = f.read(20)
    # ELF, 64-bit, little-endian, e_machine 183 (AArch64).
    assert head[:4] == b"\x7fELF" and head[4] == 2 and head[5] == 1, f"{path}: not an ELF64 LE file"
    machine = int.from_bytes(head[18:20], "little")
    assert machine == 183, f"{path}: e_machine {machine}, not aarch64"
    assert os.access(path, os.X_OK), f"{path}: not executable"
    print(f"rollcall infra: {name}/bootstrap: aarch64 executable, {os.path.getsize(path) // 1024} KiB", file=sys.stderr)
PY
echo "rollcall infra: all checks passed" >&2
