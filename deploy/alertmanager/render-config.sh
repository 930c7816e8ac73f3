#!/bin/sh
# Renders the Alertmanager config template: every ${NAME} is replaced by the value of
# the environment variable NAME, ${NAME:-default} by NAME or else the default.
# Alertmanager itself reads no environment variables, and its config holds secrets
# (SMTP password, Slack webhook, PagerDuty key), so the template in git holds only
# placeholders and the rendered file lives on a tmpfs inside the container.
#
# Comment lines are copied unchanged. Values are escaped for a double-quoted YAML
# scalar (the template quotes every placeholder that takes free text). A variable that is unset and has no default
# is an error, naming the variable: no receiver is silently left empty. As in sh,
# a variable set to "" renders as "" (`:-` also replaces "").
#
# usage: render-config.sh TEMPLATE OUTPUT      (POSIX sh + awk: busybox, mawk, gawk)
set -eu
template=${1:?usage: render-config.sh TEMPLATE OUTPUT}
output=${2:?usage: render-config.sh TEMPLATE OUTPUT}
umask 077   # the rendered file holds secrets

awk '
function escape(s,    r, i, c) {   # for a double-quoted YAML scalar; portable across awks
  r = ""
  for (i = 1; i <= length(s); i++) {
    c = substr(s, i, 1)
    if (c == "\\" || c == "\"") r = r "\\" c; else r = r c
  }
  return r
}
/^[ \t]*#/ { print; next }   # comments are copied as they are
{
  line = $0; out = ""
  while ((start = index(line, "${")) > 0) {
    rest = substr(line, start + 2)
    end = index(rest, "}")
    if (end == 0) break
    expr = substr(rest, 1, end - 1)
    name = expr; def = ""; has_def = 0
    sep = index(expr, ":-")
    if (sep > 0) { name = substr(expr, 1, sep - 1); def = substr(expr, sep + 2); has_def = 1 }
    if (name !~ /^[A-Za-z_][A-Za-z0-9_]*$/) {
      out = out substr(line, 1, start + 1); line = rest; continue
    }
    if (name in ENVIRON) { value = ENVIRON[name]; if (value == "" && has_def) value = def }
    else if (has_def) value = def
    else { printf("render-config.sh: %s:%d: environment variable %s is not set\n", FILENAME, NR, name) > "/dev/stderr"; failed = 1; value = "" }
    out = out substr(line, 1, start - 1) escape(value)
    line = substr(rest, end + 1)
  }
  print out line
}
END { exit failed }
' "$template" > "$output.tmp" || { rm -f "$output.tmp"; exit 1; }
mv "$output.tmp" "$output"
