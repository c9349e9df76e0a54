# Sourced by scripts and make targets: dotenv exports the variables of
# .env (or of the file named) that the environment leaves unset or empty,
# so the environment wins, as it does over gatewayd's own configuration
# file (`CHAOS_ENABLED=false make run` turns chaos off even though .env
# turns it on). Lines are KEY=VALUE, optionally after `export`; blank
# lines and # comments are skipped; a value is read as the shell reads it.
dotenv() {
  local file="${1:-.env}" line key
  [ -f "$file" ] || return 0
  while IFS= read -r line || [ -n "$line" ]; do
    line="${line#"${line%%[![:space:]]*}"}"
    case "$line" in '' | '#'*) continue ;; esac
    line="${line#export }"
    key="${line%%=*}"
    [[ "$key" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    [ -n "${!key:-}" ] && continue
    eval "export $line"
  done <"$file"
}
