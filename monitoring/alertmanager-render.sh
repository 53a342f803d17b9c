#!/bin/sh
# Print monitoring/alertmanager.yml (or the file given) with each ${NAME} replaced by the value of
# the environment variable NAME; a single quote in a value is doubled (the values sit in
# single-quoted YAML strings). Exits 1 naming every required variable that is unset or empty.
# POSIX sh + awk only: it runs inside the alertmanager container (busybox) before Alertmanager.
set -eu
template=${1:-$(dirname "$0")/alertmanager.yml}
: "${SMTP_REQUIRE_TLS:=true}" "${SMTP_USERNAME:=}" "${SMTP_PASSWORD:=}"
export SMTP_REQUIRE_TLS SMTP_USERNAME SMTP_PASSWORD
missing=""
for name in SMTP_HOST SMTP_PORT SMTP_FROM ALERT_EMAIL_TO ALERT_WEBHOOK_URL; do
  eval "value=\${$name:-}"
  [ -n "$value" ] || missing="$missing $name"
done
if [ -n "$missing" ]; then
  echo "alertmanager-render: set$missing (see monitoring/alertmanager.yml)" >&2
  exit 1
fi
for name in SMTP_HOST SMTP_FROM ALERT_EMAIL_TO ALERT_WEBHOOK_URL; do
  eval "value=\${$name}"
  case "$value" in
    *example.com*) echo "alertmanager-render: warning: $name is the example value ($value): alerts reach nobody" >&2 ;;
  esac
done
awk '{
  line = $0; out = ""
  while (match(line, /\$\{[A-Z_][A-Z0-9_]*\}/)) {
    name = substr(line, RSTART + 2, RLENGTH - 3)
    value = ENVIRON[name]
    gsub(/'\''/, "'\'''\''", value)
    out = out substr(line, 1, RSTART - 1) value
    line = substr(line, RSTART + RLENGTH)
  }
  print out line
}' "$template"
