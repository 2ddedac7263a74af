# Shared by the lab scenarios (sourced): how to wait for a line in a log.
# Waits, 300 s at most, until FILE has COUNT lines that contain TEXT.
wait_for() { # file, text, count
    tries=0
    while [ $tries -lt 1500 ]; do
        n=$(grep -c -F "$2" "$1" 2>/dev/null); [ "${n:-0}" -ge "$3" ] && return 0
        sleep 0.2; tries=$((tries + 1))
    done
    return 1
}
