#!/usr/bin/env bash
# qfs-deploy.sh: the operator commands behind the Makefile's deployment targets (`make help`).
#
# Parameters come from the environment (make passes its command-line variables through): the
# CloudFormation parameters by their own names (NotificationEmail, OrganizationId, VpcId, ...) and
# the tool's settings in capitals (AWS_REGION, STACK_NAME, QUALYS_POD, IMAGE_URI, ...).
# Every aws, docker and curl command goes through run/capture: with DRY_RUN=1 they are printed, as
# shell commands, instead of run. Qualys credentials never appear in a command: they go into files
# (mode 600, in a private temporary directory removed on exit) that the commands read.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
cd "$ROOT"
readonly CFN=deploy/cloudformation
readonly SERVICE_NAME=qfs
readonly DEFAULT_PLATFORMS=linux/amd64,linux/arm64
readonly STACKSET_PREFERENCES=RegionConcurrencyType=PARALLEL,FailureTolerancePercentage=10,MaxConcurrentPercentage=25

# The commands run here (aws, docker, curl) get no Qualys credential in their environment, nor make's
# MAKEFLAGS, which holds every variable given on make's command line.
export -n QUALYS_API_TOKEN QUALYS_USERNAME QUALYS_PASSWORD MAKEFLAGS MFLAGS MAKEOVERRIDES 2>/dev/null || true

# Values looked up at run time (capture), or placeholders for them in a dry run.
AccountId="" DeadLetterQueueUrl="" EventBusArn="" ImageUri="" QualysSecretArn="" QueueUrl="" Template=""

# Qualys platforms and their gateways (shared/reference/qualys-csapi.md §1; the same table as
# common/src/qualys_config.c and the templates' QualysGateways mapping).
declare -A QUALYS_GATEWAYS=(
  [US1]=https://gateway.qg1.apps.qualys.com
  [US2]=https://gateway.qg2.apps.qualys.com
  [US3]=https://gateway.qg3.apps.qualys.com
  [US4]=https://gateway.qg4.apps.qualys.com
  [EU1]=https://gateway.qg1.apps.qualys.eu
  [EU2]=https://gateway.qg2.apps.qualys.eu
  [EU3]=https://gateway.qg3.apps.qualys.it
  [IN1]=https://gateway.qg1.apps.qualys.in
  [CA1]=https://gateway.qg1.apps.qualys.ca
  [AE1]=https://gateway.qg1.apps.qualys.ae
  [UK1]=https://gateway.qg1.apps.qualys.co.uk
  [AU1]=https://gateway.qg1.apps.qualys.com.au
  [KSA1]=https://gateway.qg1.apps.qualysksa.com
)

usage() {
  cat <<'EOF'
Operator targets (make TARGET NAME=value ...; DRY_RUN=1 prints the aws/docker commands instead):
  deploy                 qfs in one account: single-account.yaml as STACK_NAME
  deploy-region          forward other Regions of the account to it: REGION=a,b (regional-spoke.yaml)
  update                 rebuild and push the image (ECR_REPO), roll it out, force a new deployment
  destroy                delete STACK_NAME (the CloudTrail bucket, if any, is kept)
  destroy-region         delete the regional forwarders of REGION=a,b
  deploy-hub             the hub in the security account: centralized-hub.yaml as STACK_NAME
  deploy-spoke           one member account: centralized-spoke.yaml as STACK_NAME-spoke
  deploy-spoke-stackset  every account of OrgUnitIds, in REGION (default AWS_REGION), by StackSet
  logs                   tail the services' logs (SERVICE=parser for one; SINCE=1h; FOLLOW=0 to stop)
  status                 stack, ECS service and queue depths
  test-event             send a sample RegisterTaskDefinition event (the qfs image) into the queue
  get-qualys-info        the Qualys AWS account and external id that the ECR role must trust
  list-registries        the registries Qualys knows
  image                  build the image for PLATFORMS (default linux/amd64,linux/arm64)
  push-image             build and push it to ECR_REPO:IMAGE_TAG

Parameters:
  AWS_REGION             the (primary) Region                                 [every AWS target]
  STACK_NAME             default qfs
  QUALYS_POD             US1 US2 US3 US4 EU1 EU2 EU3 IN1 CA1 AE1 UK1 AU1 KSA1 [deploy, deploy-hub]
  QUALYS_API_TOKEN, or QUALYS_USERNAME and QUALYS_PASSWORD: Qualys credentials, stored in the
                         stack's Secrets Manager secret from a file (export them; never echoed)
  IMAGE_URI, or ECR_REPO (+ IMAGE_TAG, default the git commit): the qfs image
  VpcId, SubnetIds (two, comma-separated), SecurityGroupId: where the task runs [deploy, deploy-hub]
  NotificationEmail, NotifyMinSeverity, NotifyNewOnly, MaxPollAttempts, PollIntervalSeconds,
  CreateTrail, LogLevel, TaskCpu, TaskMemory, ...: any parameter of the template, by its name
  OrganizationId         the organisation (o-...)                              [deploy-hub]
  SecurityAccountId, CentralEventBusArn: the hub (its outputs)     [deploy-spoke, deploy-spoke-stackset]
  OrgUnitIds             OUs for the StackSet (ou-...,ou-...); CALL_AS=DELEGATED_ADMIN from a
                         delegated administrator account                       [deploy-spoke-stackset]
  QualysAccountId, QualysExternalId: the ECR role's trust (default: asked from Qualys)
  REGION                 Regions, comma-separated              [deploy-region, destroy-region, stackset]
  DRY_RUN=1              print the commands, run nothing
EOF
}

die() {
  printf 'qfs-deploy: %s\n' "$*" >&2
  exit 2
}

note() {
  printf 'qfs-deploy: %s\n' "$*" >&2
}

dry() {
  [[ ${DRY_RUN:-0} != 0 && -n ${DRY_RUN:-} ]]
}

# ---- printing and running commands ----

# quote prints one argument as the shell needs it. A ${Name} placeholder (a value a dry run cannot
# know) is kept inside double quotes so the printed line still works as a script.
# shellcheck disable=SC2016 # the literal "${" that starts a placeholder
quote() {
  local a=$1
  if [[ $a =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
    printf '%s' "$a"
  elif [[ $a == *'${'* ]]; then
    a=${a//\\/\\\\}
    a=${a//\"/\\\"}
    a=${a//\`/\\\`}
    printf '"%s"' "$a"
  elif [[ $a != *"'"* ]]; then
    printf "'%s'" "$a"
  elif [[ $a != *[\$\`\"\\]* ]]; then
    printf '"%s"' "$a"
  else
    printf "'%s'" "${a//\'/\'\\\'\'}"
  fi
}

quote_cmd() {
  local out="" a
  for a in "$@"; do out+="${out:+ }$(quote "$a")"; done
  printf '%s' "$out"
}

# run CMD... runs a command (shown on stderr first), or prints it under DRY_RUN.
run() {
  if dry; then
    printf '%s\n' "$(quote_cmd "$@")"
    return 0
  fi
  printf '+ %s\n' "$(quote_cmd "$@")" >&2
  "$@"
}

# capture VAR CMD... stores CMD's output (trimmed) in VAR. A dry run prints VAR=$(CMD) and stores
# the placeholder ${VAR}, so the commands after it print as a working script.
capture() {
  local var=$1 out
  shift
  # shellcheck disable=SC2016 # printed shell, not expanded here
  if dry; then
    printf '%s=$(%s)\n' "$var" "$(quote_cmd "$@")"
    printf -v "$var" '${%s}' "$var"
    return 0
  fi
  # shellcheck disable=SC2016 # printed shell, not expanded here
  printf '+ %s=$(%s)\n' "$var" "$(quote_cmd "$@")" >&2
  out=$("$@")
  out=${out%$'\n'}
  [[ -n $out && $out != None ]] || die "$(quote_cmd "$@") gave nothing"
  printf -v "$var" '%s' "$out"
}

# comment prints a line of explanation among the commands of a dry run.
comment() {
  if dry; then printf '# %s\n' "$*"; else note "$*"; fi
}

# ---- private files for secrets ----

WORK=""
cleanup() {
  if [[ -n $WORK && -d $WORK ]]; then rm -rf -- "$WORK"; fi
}
trap cleanup EXIT

workdir() {
  if [[ -z $WORK ]]; then
    WORK=$(umask 077 && mktemp -d "${TMPDIR:-/tmp}/qfs-deploy.XXXXXXXX")
  fi
}

# secret_file NAME CONTENT [SHOWN] writes CONTENT to a mode-600 file and prints its path; a dry run
# writes nothing and shows SHOWN (the content with its secrets masked) instead. It runs in $(...),
# so the caller makes the directory first (workdir), where the EXIT trap will remove it.
secret_file() {
  local name=$1 content=$2 shown=${3:-'(masked)'} f
  [[ -n $WORK ]] || die "internal: secret_file before workdir"
  f=$WORK/$name
  if dry; then
    printf '# %s (mode 600, removed on exit): %s\n' "$f" "$shown" >&2
  else
    (umask 077 && printf '%s' "$content" >"$f")
  fi
  printf '%s\n' "$f"
}

# json_string prints $1 as a JSON string (require_credentials has refused control characters).
json_string() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

# ---- parameters ----

# missing_die NAME... stops, naming the missing parameters.
missing_die() {
  local list
  printf -v list '%s, ' "$@"
  die "missing required parameter(s): ${list%, } (see make help)"
}

# require NAME... stops, naming every missing variable (NAME may be A|B: one of them).
require() {
  local missing=() n a alt ok
  for n in "$@"; do
    ok=0
    IFS='|' read -r -a alt <<<"$n"
    for a in "${alt[@]}"; do [[ -n ${!a:-} ]] && ok=1; done
    ((ok)) || missing+=("${n//|/ or }")
  done
  if ((${#missing[@]})); then missing_die "${missing[@]}"; fi
}

check_region() {
  [[ $1 =~ ^[a-z]{2}(-[a-z]+)+-[0-9]+$ ]] || die "not a Region: $1"
}

check_common() {
  STACK_NAME=${STACK_NAME:-qfs}
  [[ $STACK_NAME =~ ^[A-Za-z][A-Za-z0-9-]{0,31}$ ]] || die "STACK_NAME must be a letter then up to 31 letters, digits or hyphens"
  if [[ -n ${AWS_REGION:-} ]]; then check_region "$AWS_REGION"; fi
  if [[ -n ${QUALYS_POD:-} && -z ${QUALYS_GATEWAYS[$QUALYS_POD]:-} ]]; then
    die "QUALYS_POD=$QUALYS_POD is not a Qualys platform (${!QUALYS_GATEWAYS[*]})"
  fi
}

# regions prints the Regions of REGION (comma- or space-separated), one a line.
regions() {
  local r list
  list=${REGION:-${1:-}}
  for r in ${list//,/ }; do
    check_region "$r"
    printf '%s\n' "$r"
  done
}

has_credentials() {
  [[ -n ${QUALYS_API_TOKEN:-} || (-n ${QUALYS_USERNAME:-} && -n ${QUALYS_PASSWORD:-}) ]]
}

require_credentials() {
  if [[ -n ${QUALYS_USERNAME:-} && -z ${QUALYS_PASSWORD:-} ]]; then die "missing required parameter(s): QUALYS_PASSWORD (with QUALYS_USERNAME)"; fi
  if [[ -n ${QUALYS_PASSWORD:-} && -z ${QUALYS_USERNAME:-} ]]; then die "missing required parameter(s): QUALYS_USERNAME (with QUALYS_PASSWORD)"; fi
  has_credentials || die "missing required parameter(s): QUALYS_API_TOKEN or QUALYS_USERNAME and QUALYS_PASSWORD"
  local v
  for v in "${QUALYS_API_TOKEN:-}" "${QUALYS_USERNAME:-}" "${QUALYS_PASSWORD:-}"; do
    if [[ $v == *[$'\001'-$'\037']* ]]; then die "a Qualys credential contains a control character"; fi
  done
}

gateway() {
  if [[ -n ${QUALYS_GATEWAY_URL:-} ]]; then
    printf '%s\n' "${QUALYS_GATEWAY_URL%/}"
    return
  fi
  require QUALYS_POD
  local url=${QUALYS_GATEWAYS[$QUALYS_POD]:-}
  [[ -n $url ]] || die "QUALYS_POD=$QUALYS_POD is not a Qualys platform (${!QUALYS_GATEWAYS[*]})"
  printf '%s\n' "$url"
}

# template_params FILE... prints the names of the templates' parameters.
template_params() {
  awk 'FNR == 1 { p = 0 } /^Parameters:/ { p = 1; next } /^[^ #]/ { p = 0 }
       p && /^  [A-Za-z0-9]+:[[:space:]]*$/ { sub(/^  /, ""); sub(/:.*/, ""); print }' "$@"
}

# template_required FILE prints the parameters that have no Default.
template_required() {
  awk '/^Parameters:/ { p = 1; next } /^[^ #]/ { if (p && name != "" && !def) print name; p = 0 }
       p && /^  [A-Za-z0-9]+:[[:space:]]*$/ { if (name != "" && !def) print name; name = $1; sub(/:.*/, "", name); def = 0 }
       p && /^    Default:/ { def = 1 }
       END { if (p && name != "" && !def) print name }' "$1"
}

# The make variable that sets a template parameter, where it is not the parameter's own name.
param_source() {
  case $1 in
    QualysPod) printf 'QUALYS_POD' ;;
    ImageUri) printf 'IMAGE_URI or ECR_REPO' ;;
    *) printf '%s' "$1" ;;
  esac
}

image_tag() {
  if [[ -n ${IMAGE_TAG:-} ]]; then
    printf '%s\n' "$IMAGE_TAG"
  elif git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null; then
    :
  else
    printf 'dev\n'
  fi
}

image_uri() {
  if [[ -n ${IMAGE_URI:-} ]]; then
    printf '%s\n' "$IMAGE_URI"
  elif [[ -n ${ECR_REPO:-} ]]; then
    printf '%s:%s\n' "$ECR_REPO" "$(image_tag)"
  fi
}

# param_value NAME prints the value the operator gave for a template parameter (empty if none).
param_value() {
  case $1 in
    QualysPod) printf '%s' "${QUALYS_POD:-}" ;;
    ImageUri) image_uri ;;
    GlobalResourcesRegion) printf '%s' "${GlobalResourcesRegion:-${AWS_REGION:-}}" ;;
    *) printf '%s' "${!1:-}" ;;
  esac
}

# overrides TEMPLATE [optional [MORE_TEMPLATES...]] fills OVERRIDES with Name=Value for every
# parameter given and, unless "optional", stops naming the required ones that are missing.
OVERRIDES=()
overrides() {
  local file=$1 mode=${2:-} p v missing=()
  OVERRIDES=()
  while IFS= read -r p; do
    v=$(param_value "$p")
    if [[ -n $v ]]; then OVERRIDES+=("$p=$v"); fi
  done < <(template_params "$file" "${@:3}" | awk '!seen[$0]++')
  [[ $mode == optional ]] && return 0
  while IFS= read -r p; do
    [[ -n $(param_value "$p") ]] || missing+=("$(param_source "$p")")
  done < <(template_required "$file")
  if ((${#missing[@]})); then missing_die "${missing[@]}"; fi
}

# ---- Qualys API (curl; credentials and token only in files) ----

# qualys_login leaves in HEADERS the path of a curl header file with the bearer token.
HEADERS=""
qualys_login() {
  local gw=$1 user pass tokenf
  require_credentials
  workdir
  HEADERS=$WORK/qualys-headers
  if [[ -n ${QUALYS_API_TOKEN:-} ]]; then
    secret_file qualys-headers "Authorization: Bearer ${QUALYS_API_TOKEN}"$'\n' 'Authorization: Bearer ********' >/dev/null
    return
  fi
  user=$(secret_file qualys-username "$QUALYS_USERNAME")
  pass=$(secret_file qualys-password "$QUALYS_PASSWORD")
  tokenf=$WORK/qualys-token
  run curl --silent --show-error --fail --max-time 60 --request POST \
    --header 'Content-Type: application/x-www-form-urlencoded' \
    --data-urlencode "username@$user" --data-urlencode "password@$pass" --data token=true \
    --output "$tokenf" "$gw/auth"
  if dry; then
    printf '# %s (mode 600): Authorization: Bearer <the token in %s>\n' "$HEADERS" "$tokenf" >&2
  else
    (umask 077 && printf 'Authorization: Bearer %s\n' "$(tr -d '\r\n' <"$tokenf")" >"$HEADERS")
  fi
}

qualys_get() {
  local gw=$1 path=$2 out=$3
  run curl --silent --show-error --fail --max-time 60 --header "@$HEADERS" \
    --header 'Accept: application/json' --output "$out" "$gw/csapi/v1.3/$path"
}

# qualys_aws_base sets QualysAccountId and QualysExternalId from GET /registry/aws-base.
qualys_aws_base() {
  local gw body
  gw=$(gateway)
  qualys_login "$gw"
  body=$WORK/aws-base.json
  qualys_get "$gw" registry/aws-base "$body"
  if dry; then
    # shellcheck disable=SC2016 # placeholders for the printed commands
    QualysAccountId='${QualysAccountId}' QualysExternalId='${QualysExternalId}'
    comment "QualysAccountId and QualysExternalId: accountId and externalId of $body"
    return
  fi
  local text
  text=$(tr -d '\r\n' <"$body")
  [[ $text =~ \"accountId\"[[:space:]]*:[[:space:]]*\"?([0-9]{12})\"? ]] || die "no accountId in the answer of $gw/csapi/v1.3/registry/aws-base"
  QualysAccountId=${BASH_REMATCH[1]}
  [[ $text =~ \"externalId\"[[:space:]]*:[[:space:]]*\"?([A-Za-z0-9_+=,.@:/-]+)\"? ]] || die "no externalId in the answer of $gw/csapi/v1.3/registry/aws-base"
  QualysExternalId=${BASH_REMATCH[1]}
}

# qualys_trust makes sure QualysAccountId and QualysExternalId are set: given, or asked from Qualys.
qualys_trust() {
  if [[ -n ${QualysAccountId:-} && -n ${QualysExternalId:-} ]]; then return; fi
  has_credentials || die "missing required parameter(s): QualysAccountId and QualysExternalId, or QUALYS_API_TOKEN or QUALYS_USERNAME and QUALYS_PASSWORD to ask Qualys for them"
  qualys_aws_base
}

# ---- AWS helpers ----

stack_output() {
  local var=$1 stack=$2 region=$3 key=$4
  capture "$var" aws cloudformation describe-stacks --region "$region" --stack-name "$stack" \
    --query "Stacks[0].Outputs[?OutputKey=='$key'].OutputValue" --output text
}

# store_credentials STACK REGION writes the Qualys credentials into the stack's secret.
store_credentials() {
  local stack=$1 region=$2 f content shown
  workdir
  if [[ -n ${QUALYS_API_TOKEN:-} ]]; then
    content="{\"token\": $(json_string "$QUALYS_API_TOKEN")}"
    shown='{"token": "********"}'
  else
    content="{\"username\": $(json_string "$QUALYS_USERNAME"), \"password\": $(json_string "$QUALYS_PASSWORD")}"
    shown='{"username": "********", "password": "********"}'
  fi
  f=$(secret_file qualys-secret.json "$content" "$shown")
  stack_output QualysSecretArn "$stack" "$region" QualysSecretArn
  run aws secretsmanager put-secret-value --region "$region" --secret-id "$QualysSecretArn" \
    --secret-string "file://$f"
}

cfn_deploy() {
  local stack=$1 region=$2 template=$3
  shift 3
  local cmd=(aws cloudformation deploy --region "$region" --stack-name "$stack"
    --template-file "$CFN/$template.yaml" --capabilities CAPABILITY_NAMED_IAM
    --no-fail-on-empty-changeset --tags "qfs:template=$template")
  if (($#)); then cmd+=(--parameter-overrides "$@"); fi
  run "${cmd[@]}"
}

show_outputs() {
  run aws cloudformation describe-stacks --region "$1" --stack-name "$2" \
    --query 'Stacks[0].Outputs' --output table
}

# ---- commands ----

# stack_exists STACK REGION: whether the stack is there (a dry run prints the check and assumes not).
stack_exists() {
  local check=(aws cloudformation describe-stacks --region "$2" --stack-name "$1" --query 'Stacks[0].StackStatus' --output text)
  if dry; then
    comment "a new stack unless this finds it (an existing one skips the DesiredCount=0 deploy):"
    run "${check[@]}"
    return 1
  fi
  "${check[@]}" >/dev/null 2>&1
}

# A new stack starts its service with no task (DesiredCount=0) until the Qualys secret holds the
# credentials, so no event meets the secret's placeholder; then the credentials, then DesiredCount=1.
cmd_deploy_main() {
  local template=$1
  check_common
  require AWS_REGION
  if [[ -n ${DesiredCount:-} ]]; then die "DesiredCount is set by make deploy itself"; fi
  overrides "$CFN/$template.yaml"
  require_credentials
  if [[ $template == single-account ]]; then
    qualys_trust
    overrides "$CFN/$template.yaml"
  fi
  if ! stack_exists "$STACK_NAME" "$AWS_REGION"; then
    cfn_deploy "$STACK_NAME" "$AWS_REGION" "$template" "${OVERRIDES[@]}" DesiredCount=0
  fi
  store_credentials "$STACK_NAME" "$AWS_REGION"
  cfn_deploy "$STACK_NAME" "$AWS_REGION" "$template" "${OVERRIDES[@]}" DesiredCount=1
  show_outputs "$AWS_REGION" "$STACK_NAME"
}

cmd_deploy() {
  cmd_deploy_main single-account
}

cmd_deploy_hub() {
  cmd_deploy_main centralized-hub
  comment "member accounts: make deploy-spoke (or deploy-spoke-stackset) with SecurityAccountId and CentralEventBusArn from these outputs"
}

cmd_deploy_spoke() {
  check_common
  require AWS_REGION CentralEventBusArn SecurityAccountId
  qualys_trust
  overrides "$CFN/centralized-spoke.yaml"
  cfn_deploy "$STACK_NAME-spoke" "$AWS_REGION" centralized-spoke "${OVERRIDES[@]}"
}

cmd_deploy_spoke_stackset() {
  check_common
  require AWS_REGION OrgUnitIds CentralEventBusArn SecurityAccountId
  qualys_trust
  overrides "$CFN/centralized-spoke.yaml"
  local name=$STACK_NAME-spoke kv params=() ous regs=() callas=()
  for kv in "${OVERRIDES[@]}"; do
    [[ $kv != *,* ]] || die "a StackSet parameter value may not contain a comma: ${kv%%=*}"
    params+=("ParameterKey=${kv%%=*},ParameterValue=${kv#*=}")
  done
  ous=${OrgUnitIds:-}
  ous=${ous// /}
  [[ $ous =~ ^(ou-[a-z0-9]+-[a-z0-9]+|r-[a-z0-9]+)(,(ou-[a-z0-9]+-[a-z0-9]+|r-[a-z0-9]+))*$ ]] || die "OrgUnitIds must be ou-... ids (or the root r-...), comma-separated"
  mapfile -t regs < <(regions "$AWS_REGION")
  if [[ -n ${CALL_AS:-} ]]; then
    [[ $CALL_AS == SELF || $CALL_AS == DELEGATED_ADMIN ]] || die "CALL_AS must be SELF or DELEGATED_ADMIN"
    callas=(--call-as "$CALL_AS")
  fi
  local set_args=(--region "$AWS_REGION" --stack-set-name "$name" "${callas[@]}")
  local body=(--template-body "file://$CFN/centralized-spoke.yaml" --capabilities CAPABILITY_NAMED_IAM --parameters "${params[@]}")
  local targets=(--deployment-targets "OrganizationalUnitIds=$ous" --regions "${regs[@]}"
    --operation-preferences "$STACKSET_PREFERENCES")
  if dry; then
    comment "the StackSet exists when this succeeds:"
    run aws cloudformation describe-stack-set "${set_args[@]}"
    comment "when it does not exist:"
    run aws cloudformation create-stack-set "${set_args[@]}" "${body[@]}" --permission-model SERVICE_MANAGED \
      --auto-deployment Enabled=true,RetainStacksOnAccountRemoval=false --description "qfs spokes (centralized-spoke.yaml)"
    run aws cloudformation create-stack-instances "${set_args[@]}" "${targets[@]}"
    comment "when it exists:"
    run aws cloudformation update-stack-set "${set_args[@]}" "${body[@]}" "${targets[@]}"
    return
  fi
  if aws cloudformation describe-stack-set "${set_args[@]}" >/dev/null 2>&1; then
    run aws cloudformation update-stack-set "${set_args[@]}" "${body[@]}" "${targets[@]}"
    note "to add OUs or Regions that have no stack instance yet: aws cloudformation create-stack-instances ${set_args[*]} ..."
  else
    run aws cloudformation create-stack-set "${set_args[@]}" "${body[@]}" --permission-model SERVICE_MANAGED \
      --auto-deployment Enabled=true,RetainStacksOnAccountRemoval=false --description "qfs spokes (centralized-spoke.yaml)"
    run aws cloudformation create-stack-instances "${set_args[@]}" "${targets[@]}"
  fi
}

cmd_deploy_region() {
  check_common
  require AWS_REGION REGION
  local r bus regs=()
  mapfile -t regs < <(regions)
  ((${#regs[@]})) || die "missing required parameter(s): REGION"
  for r in "${regs[@]}"; do
    [[ $r != "$AWS_REGION" ]] || die "REGION lists $r, the primary Region (AWS_REGION) itself"
  done
  if [[ -n ${CentralEventBusArn:-} ]]; then
    bus=$CentralEventBusArn
  else
    stack_output EventBusArn "$STACK_NAME" "$AWS_REGION" EventBusArn
    bus=$EventBusArn
  fi
  for r in "${regs[@]}"; do
    cfn_deploy "$STACK_NAME-regional" "$r" regional-spoke "CentralEventBusArn=$bus"
  done
}

cmd_update() {
  check_common
  require AWS_REGION "IMAGE_URI|ECR_REPO"
  local template=${TEMPLATE:-}
  if [[ -n ${ECR_REPO:-} && -z ${IMAGE_URI:-} ]]; then
    cmd_push_image
  fi
  if [[ -z $template ]]; then
    capture Template aws cloudformation describe-stacks --region "$AWS_REGION" --stack-name "$STACK_NAME" \
      --query "Stacks[0].Tags[?Key=='qfs:template'].Value" --output text
    template=$Template
  fi
  if ! dry; then
    [[ $template == single-account || $template == centralized-hub ]] || die "stack $STACK_NAME was not deployed by make deploy or deploy-hub (template: $template)"
  fi
  if [[ -n ${TEMPLATE:-} ]]; then
    [[ -f $CFN/$TEMPLATE.yaml ]] || die "TEMPLATE must name a file of $CFN without .yaml"
    overrides "$CFN/$TEMPLATE.yaml" optional
  else
    # Only what the operator gave is passed; every other parameter keeps its current value.
    overrides "$CFN/single-account.yaml" optional "$CFN/centralized-hub.yaml"
  fi
  cfn_deploy "$STACK_NAME" "$AWS_REGION" "$template" "${OVERRIDES[@]}"
  if has_credentials; then store_credentials "$STACK_NAME" "$AWS_REGION"; fi
  run aws ecs update-service --region "$AWS_REGION" --cluster "$STACK_NAME" --service "$SERVICE_NAME" \
    --force-new-deployment --query 'service.deployments[0].[id,rolloutState]' --output text
  run aws ecs wait services-stable --region "$AWS_REGION" --cluster "$STACK_NAME" --services "$SERVICE_NAME"
}

delete_stack() {
  run aws cloudformation delete-stack --region "$2" --stack-name "$1"
  run aws cloudformation wait stack-delete-complete --region "$2" --stack-name "$1"
}

cmd_destroy() {
  check_common
  require AWS_REGION
  delete_stack "$STACK_NAME" "$AWS_REGION"
  comment "a trail bucket created by CreateTrail=true is kept (DeletionPolicy Retain): delete it by hand when its logs are no longer needed"
}

cmd_destroy_region() {
  check_common
  require REGION
  local r
  while IFS= read -r r; do delete_stack "$STACK_NAME-regional" "$r"; done < <(regions)
}

cmd_logs() {
  check_common
  require AWS_REGION
  local cmd=(aws logs tail "/qfs/$STACK_NAME" --region "$AWS_REGION" --since "${SINCE:-1h}" --format short)
  if [[ -n ${SERVICE:-} ]]; then
    [[ $SERVICE =~ ^(nats|ingest|parser|cache|registry|scanner-poller|notifier)$ ]] || die "SERVICE must be one of nats ingest parser cache registry scanner-poller notifier"
    cmd+=(--log-stream-name-prefix "$SERVICE/")
  fi
  [[ ${FOLLOW:-1} == 0 ]] || cmd+=(--follow)
  run "${cmd[@]}"
}

cmd_status() {
  check_common
  require AWS_REGION
  run aws cloudformation describe-stacks --region "$AWS_REGION" --stack-name "$STACK_NAME" \
    --query 'Stacks[0].[StackName,StackStatus,LastUpdatedTime]' --output table
  run aws ecs describe-services --region "$AWS_REGION" --cluster "$STACK_NAME" --services "$SERVICE_NAME" \
    --query 'services[0].{status:status,desired:desiredCount,running:runningCount,pending:pendingCount,rollout:deployments[0].rolloutState}' --output table
  run aws ecs list-tasks --region "$AWS_REGION" --cluster "$STACK_NAME" --service-name "$SERVICE_NAME" --output text
  stack_output QueueUrl "$STACK_NAME" "$AWS_REGION" QueueUrl
  stack_output DeadLetterQueueUrl "$STACK_NAME" "$AWS_REGION" DeadLetterQueueUrl
  local q
  for q in "$QueueUrl" "$DeadLetterQueueUrl"; do
    run aws sqs get-queue-attributes --region "$AWS_REGION" --queue-url "$q" \
      --attribute-names ApproximateNumberOfMessages ApproximateNumberOfMessagesNotVisible --output table
  done
}

random_uuid() {
  printf '%04x%04x-%04x-4%03x-8%03x-%04x%04x%04x\n' $((RANDOM)) $((RANDOM)) $((RANDOM)) $((RANDOM % 4096)) \
    $((RANDOM % 4096)) $((RANDOM)) $((RANDOM)) $((RANDOM))
}

cmd_test_event() {
  check_common
  require AWS_REGION
  capture AccountId aws sts get-caller-identity --region "$AWS_REGION" --query Account --output text
  stack_output QueueUrl "$STACK_NAME" "$AWS_REGION" QueueUrl
  stack_output ImageUri "$STACK_NAME" "$AWS_REGION" ImageUri
  local now id event f
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  id=$(random_uuid)
  event=$(
    cat <<EOF
{"version": "0", "id": "$id", "detail-type": "AWS API Call via CloudTrail", "source": "aws.ecs",
 "account": "$AccountId", "time": "$now", "region": "$AWS_REGION", "resources": [],
 "detail": {"eventVersion": "1.11", "eventSource": "ecs.amazonaws.com", "eventName": "RegisterTaskDefinition",
  "awsRegion": "$AWS_REGION", "eventTime": "$now", "eventID": "$(random_uuid)", "readOnly": false,
  "eventType": "AwsApiCall", "managementEvent": true, "recipientAccountId": "$AccountId",
  "userIdentity": {"type": "AssumedRole", "accountId": "$AccountId", "arn": "arn:aws:sts::$AccountId:assumed-role/qfs/make-test-event"},
  "requestParameters": {"family": "qfs-test-event", "containerDefinitions": [{"name": "qfs", "image": "$ImageUri"}]},
  "responseElements": {"taskDefinition": {"family": "qfs-test-event", "revision": 1, "status": "ACTIVE",
   "taskDefinitionArn": "arn:aws:ecs:$AWS_REGION:$AccountId:task-definition/qfs-test-event:1",
   "containerDefinitions": [{"name": "qfs", "image": "$ImageUri"}]}}}}
EOF
  )
  workdir
  f=$WORK/test-event.json
  if dry; then
    printf '# %s: a RegisterTaskDefinition event for the qfs image itself:\n' "$f"
    printf '%s\n' "$event" | sed 's/^/#   /'
  else
    printf '%s\n' "$event" >"$f"
  fi
  run aws sqs send-message --region "$AWS_REGION" --queue-url "$QueueUrl" --message-body "file://$f"
  comment "follow it: make logs (or make logs SERVICE=parser)"
}

cmd_get_qualys_info() {
  check_common
  qualys_aws_base
  if ! dry; then
    printf 'QualysAccountId=%s\nQualysExternalId=%s\n' "$QualysAccountId" "$QualysExternalId"
  fi
  local gw out
  gw=$(gateway)
  out=$WORK/aws-connectors.json
  qualys_get "$gw" registry/aws/connectors "$out"
  if ! dry; then
    printf 'AWS connectors:\n'
    cat "$out"
    printf '\n'
  fi
}

cmd_list_registries() {
  check_common
  local gw out
  gw=$(gateway)
  qualys_login "$gw"
  out=$WORK/registries.json
  qualys_get "$gw" 'registry?pageSize=100&pageNo=1&pageNumber=1' "$out"
  if ! dry; then
    if [[ -s $out ]]; then cat "$out"; else printf 'no registries\n'; fi
    printf '\n'
  fi
}

docker_build() {
  local tag=$1 platforms=${PLATFORMS:-$DEFAULT_PLATFORMS}
  shift
  run docker buildx build --platform "$platforms" --file Dockerfile --tag "$tag" "$@" .
}

cmd_image() {
  check_common
  local platforms=${PLATFORMS:-$DEFAULT_PLATFORMS} extra=()
  # Several platforms stay in the build cache; one can be loaded into the local engine.
  [[ $platforms == *,* ]] || extra=(--load)
  docker_build "${IMAGE_NAME:-qfs}:$(image_tag)" "${extra[@]}"
}

cmd_push_image() {
  check_common
  require ECR_REPO
  local host=${ECR_REPO%%/*} region
  [[ $ECR_REPO == */* && $host =~ ^[0-9]{12}\.dkr\.ecr(-fips)?\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$ ]] || die "ECR_REPO must be ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME"
  region=${BASH_REMATCH[2]}
  if dry; then
    printf '%s | %s\n' "$(quote_cmd aws ecr get-login-password --region "$region")" \
      "$(quote_cmd docker login --username AWS --password-stdin "$host")"
  else
    printf '+ aws ecr get-login-password --region %s | docker login --username AWS --password-stdin %s\n' "$region" "$host" >&2
    aws ecr get-login-password --region "$region" | docker login --username AWS --password-stdin "$host"
  fi
  docker_build "$ECR_REPO:$(image_tag)" --push
}

main() {
  local command=${1:-usage}
  case $command in
    usage | help | -h | --help) usage ;;
    deploy | deploy-hub | deploy-spoke | deploy-spoke-stackset | deploy-region | update | destroy | \
      destroy-region | logs | status | test-event | get-qualys-info | list-registries | image | push-image)
      "cmd_${command//-/_}"
      ;;
    *)
      usage >&2
      die "unknown command: $command"
      ;;
  esac
}

main "$@"
