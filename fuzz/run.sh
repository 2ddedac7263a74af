#!/usr/bin/env bash
# Builds the libFuzzer targets and runs each for SECONDS (default 20) from
# its corpus in fuzz/corpus/. C targets (fuzz/*.c) are built with the Swift
# toolchain's clang, ASan + UBSan; Swift targets (fuzz/*.swift) link against
# the package built once with swiftc -sanitize=fuzzer,address (release, with
# testable imports: the debug build runs ten times fewer inputs).
# New inputs go to a scratch copy; a crash fails the run and leaves its
# input in .build-fuzz/. Usage: fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}; shift || true
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(virtq iommu pci_config serial cli kernel api)
out=.build-fuzz; mkdir -p "$out"
cc=$(command -v clang)

build_c() {
    "$cc" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE \
        -Iinclude -ISources/CVMMCore -o "$out/$1" "fuzz/$1.c" $(find Sources/CVMMCore -name "*.c") -luring -lpthread
}

spm="$out/spm"; package_built=
# The package's objects: a source deleted since an earlier build leaves its
# object behind, which must not be linked (it names what no longer exists).
objects() {
    local o name
    for o in $(find "$1"/{CSystem,CVMMCore,Hypervisor,SystemPackage,cloud_hypervisor}.build -name '*.o'); do
        case "$o" in
            *.build/Sources/*.c.o) name=${o#*.build/}; [ -e "${name%.o}" ] || continue ;;
            # `sources` quotes a path with spaces.
            *.swift.o) name=$(basename "${o%.o}")
                grep -q -e "/$name\$" -e "/$name'\$" "${o%/*}/sources" 2>/dev/null || continue ;;
        esac
        echo "$o"
    done
}
build_swift() {
    if [ -z "$package_built" ]; then
        # SwiftPM forgets a --target build's description between runs ("unknown build description").
        rm -f "$spm/release/description.json"
        swift build -c release --scratch-path "$spm" --target cloud-hypervisor -Xswiftc -enable-testing \
            -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address || return 1
        package_built=1
    fi
    local d="$spm/release" maps=() m
    for m in include/module.modulemap Sources/CSeccomp/module.modulemap Sources/CCapNG/module.modulemap \
             "$spm/checkouts/swift-system/Sources/CSystem/include/module.modulemap"; do
        maps+=(-Xcc "-fmodule-map-file=$m")
    done
    swiftc -O -g -sanitize=fuzzer,address -parse-as-library -I "$d/Modules" -Xcc -Iinclude "${maps[@]}" -module-name "fuzz_$1" \
        "fuzz/$1.swift" $(objects "$d") \
        -lseccomp -lcap-ng -luring -o "$out/$1"
}

for t in "${targets[@]}"; do
    if [ "$t" = pci_config ] && ! [ -r /dev/kvm -a -w /dev/kvm ]; then
        echo "fuzz: $t: skipped (needs read-write /dev/kvm)"; continue
    fi
    if [ -f "fuzz/$t.swift" ]; then build=build_swift; else build=build_c; fi
    if ! $build "$t" > "$out/$t.build.log" 2>&1; then
        grep -v "Cannot export local symbol\|warning:" "$out/$t.build.log" | tail -30 >&2
        echo "fuzz: cannot build $t" >&2; exit 1
    fi
    scratch=$(mktemp -d); cp -r "fuzz/corpus/$t/." "$scratch/"
    log="$out/$t.log"
    if ! "$out/$t" -max_total_time="$seconds" -timeout=10 -artifact_prefix="$out/$t-" "$scratch" > "$log" 2>&1; then
        tail -40 "$log" >&2
        echo "fuzz: $t FAILED (input in $out/$t-*)" >&2
        rm -rf "$scratch"; exit 1
    fi
    runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -1)
    echo "fuzz: $t: ${runs:-?} in ${seconds}s, corpus $(ls "$scratch" | wc -l) inputs, no crash"
    rm -rf "$scratch"
done
