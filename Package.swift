// swift-tools-version:6.0
import PackageDescription

// A section per function, so that the linker can lay out the functions a VM
// runs together (link/hot-symbols.txt); swiftc puts a module's functions in
// one .text otherwise.
let functionSections: [SwiftSetting] = [.unsafeFlags(["-Xfrontend", "-function-sections"])]

let package = Package(
    name: "cloud-hypervisor",
    products: [
        .executable(name: "cloud-hypervisor", targets: ["cloud-hypervisor"]),
        .executable(name: "ch-remote", targets: ["ch-remote"]),
        .library(name: "Hypervisor", targets: ["Hypervisor"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
    ],
    targets: [
        // The C core: vCPU threads, run loop, buses and the devices on the hot path,
        // one folder per subsystem (vm, irq, pci, virtio, net, vfio, platform,
        // sandbox, common). Its public headers live in the top-level include/,
        // in the same folders: the one C API Swift sees.
        .target(
            name: "CVMMCore",
            path: ".",
            sources: ["Sources/CVMMCore"],
            publicHeadersPath: "include",
            cSettings: [
                .define("_GNU_SOURCE"),
                // Internal headers are named by subsystem: "virtio/virtio_dev.h".
                .headerSearchPath("Sources/CVMMCore"),
                // A section per function: the linker lays out the core's
                // functions by link/hot-symbols.txt as the Swift ones.
                .unsafeFlags(["-Wall", "-Wextra", "-Werror=implicit-function-declaration", "-ffunction-sections"]),
            ],
            // virtio-blk's asynchronous I/O (Debian liburing-dev).
            linkerSettings: [.linkedLibrary("uring")]
        ),
        // Without pkgConfig: its -L/usr/lib/x86_64-linux-gnu would come
        // ahead of link/ and pick the shared libraries (link/ says why not).
        .systemLibrary(name: "CSeccomp", providers: [.apt(["libseccomp-dev"])]),
        .systemLibrary(name: "CCapNG", providers: [.apt(["libcap-ng-dev"])]),
        .target(
            name: "Hypervisor",
            dependencies: [
                "CVMMCore",
                "CSeccomp",
                "CCapNG",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: functionSections
        ),
        // The command line is read by the target itself (ArgumentReader):
        // swift-argument-parser linked FoundationEssentials into every VMM.
        // Linked by the toolchain's lld with relative relocations packed
        // (DT_RELR, glibc 2.36+): the loader's table of the binary's 23,000
        // pointers to relocate is 5 KiB instead of 563 KiB of every VM's
        // mapped pages (bench/memory.py). libstdc++, libseccomp, libcap-ng,
        // liburing and libgcc are linked statically (link/libstdc++.so says
        // why; link/ holds the linker scripts that pick the archives): a
        // shared library costs every VM its relocated data and the pages its
        // loading touches, which only the VMMs share. The functions a VM
        // runs are laid out first, together (link/order-symbols.py says
        // why); a name the list has and the binary lacks is no error, the
        // test BinaryLinkTests.hotFunctionsFirst tells when the list is
        // stale. The toolchain's static-stdlib link exports every function
        // of the executable (-export-dynamic): 3,000 dynamic symbols nothing
        // looks up, whose tables the loader's lookups mapped in every VM
        // (240 KiB).
        .executableTarget(
            name: "cloud-hypervisor",
            dependencies: ["Hypervisor"],
            swiftSettings: functionSections,
            linkerSettings: [.unsafeFlags(["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
                                           "-L\(Context.packageDirectory)/link",
                                           "-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/link/hot-symbols.txt",
                                           "-Xlinker", "--no-warn-symbol-ordering",
                                           "-Xlinker", "--no-export-dynamic", "-Xclang-linker", "-static-libgcc"])]
        ),
        // One API request per run, as Cloud Hypervisor's ch-remote.
        .executableTarget(name: "ch-remote", dependencies: ["Hypervisor"]),
        // Test-only C: provokes seccomp violations in a forked child. Never
        // linked into the shipped binary.
        .target(name: "CVMMTestHooks", dependencies: ["CVMMCore"], path: "Tests/CVMMTestHooks"),
        .testTarget(
            name: "HypervisorTests",
            dependencies: ["Hypervisor", "CVMMCore", "CVMMTestHooks", "cloud-hypervisor", "ch-remote"],
            exclude: ["Guests"]
        ),
    ]
)
