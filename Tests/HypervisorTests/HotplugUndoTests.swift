import Foundation
import Testing

/// What must come back exactly after a failed step. The count of
/// mappings is kept apart: a thread that started and stopped leaves its
/// stack in glibc's cache, which is no leak.
struct HotplugFootprint: Equatable, CustomStringConvertible {
    let descriptors: [String]
    let threads: [String]
    let info: String
    let mappings: Int

    static func == (a: HotplugFootprint, b: HotplugFootprint) -> Bool {
        a.descriptors == b.descriptors && a.threads == b.threads && a.info == b.info
    }

    init(_ vmm: APIVMM) {
        let pid = vmm.child.processIdentifier
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        // API connections come and go with each request: not the VM's. One
        // closed between the listing and its read has no target left.
        descriptors = fds.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)") }
            .filter { !$0.hasPrefix("socket:") }.sorted()
        threads = threadStatus(pid: pid).keys.map { String($0.prefix { $0 != "/" }) }.sorted()
        mappings = ((try? String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8)) ?? "").split(separator: "\n").count
        info = vmm.curl("GET", "vm.info").body
    }

    var description: String { "fds \(descriptors), threads \(threads), \(mappings) mappings, vm.info \(info)" }
}

/// Every step of a hotplug or resize that can fail, made to fail once
/// (`FaultInjection`, debug builds): the answer is an error, the VM is as
/// it was — descriptors, threads, mappings, device tree, what the guest was
/// told — and the same request then succeeds as if nothing had happened.
@Suite("Hotplug steps undone when a later one fails", .enabled(if: Host.hasKVM, Host.kvmSkipReason), .serialized)
struct HotplugUndoTests {
    static func launch(_ guest: String, faults: [String], _ arguments: [String] = []) throws -> APIVMM {
        try APIVMM(["--kernel", try Guests.path(guest), "--serial", "tty", "--console", "off"] + arguments,
                   launcher: ["/usr/bin/env", "CLOUD_HYPERVISOR_TEST_FAULTS=" + faults.joined(separator: ",")])
    }

    @Test("a disk whose thread does not start, then one the guest cannot be told of: nothing stays; the next add takes the slot")
    func disk() throws {
        let disk = FileManager.default.temporaryDirectory.appendingPathComponent("undo-\(getpid()).raw").path
        _ = FileManager.default.createFile(atPath: disk, contents: Data(count: 1 << 20))
        defer { try? FileManager.default.removeItem(atPath: disk) }
        let vmm = try Self.launch("hotplug", faults: ["device-thread", "pci-announce"])
        #expect(eventually(10) { vmm.stdout.contains("hotplug guest ready") })
        let before = HotplugFootprint(vmm)
        for point in ["device-thread", "pci-announce"] {
            let failed = vmm.curl("PUT", "vm.add-disk", body: "{\"path\":\"\(disk)\",\"id\":\"hot\"}")
            #expect(failed.status == 500 && failed.body.contains("\(point) (failure injected by the test)"), "\(failed.body)")
            #expect(HotplugFootprint(vmm) == before, "after \(point): \(HotplugFootprint(vmm)) instead of \(before)")
        }
        usleep(300_000)
        #expect(!vmm.stdout.contains("slot arrived"), "the guest was told of a device that failed: \(vmm.stdout)")
        // The image is not held by what failed, and the first free slot is free.
        let added = vmm.curl("PUT", "vm.add-disk", body: "{\"path\":\"\(disk)\",\"id\":\"hot\"}")
        #expect(added.status == 200 && added.body == "{\"bdf\":\"0000:00:02.0\",\"id\":\"hot\"}", "\(added.body)")
        #expect(eventually(10) { vmm.stdout.contains("slot arrived") }, "\(vmm.stdout)")
        #expect(HotplugFootprint(vmm).threads.count == before.threads.count + 1, "\(HotplugFootprint(vmm).threads)")
        #expect(vmm.shutdown() == 0)
    }

    @Test("vCPUs the guest cannot be told of: their threads stop, the guest's view stays; the next resize brings them")
    func vcpus() throws {
        let vmm = try Self.launch("cpuhotplug", faults: ["vcpu-announce"], ["--cpus", "boot=1,max=4"])
        #expect(eventually(10) { vmm.stdout.contains("cpu hotplug guest ready") })
        let before = HotplugFootprint(vmm)
        let failed = vmm.curl("PUT", "vm.resize", body: "{\"desired_vcpus\":3}")
        #expect(failed.status == 500 && failed.body.contains("vcpu-announce (failure injected by the test)"), "\(failed.body)")
        // KVM cannot destroy a vCPU: those created stay, as in Cloud
        // Hypervisor, without a thread, for the next resize to take.
        let after = HotplugFootprint(vmm)
        #expect(after.threads == before.threads && after.info == before.info, "\(after) instead of \(before)")
        #expect(after.descriptors == (before.descriptors + ["anon_inode:kvm-vcpu:1", "anon_inode:kvm-vcpu:2"]).sorted(), "\(after.descriptors)")
        usleep(300_000)
        #expect(!vmm.stdout.contains("inserted"), "\(vmm.stdout)")
        #expect(vmm.curl("PUT", "vm.resize", body: "{\"desired_vcpus\":3}").status == 204)
        #expect(eventually(10) { vmm.stdout.contains("cpu 1 inserted sta=0x0f") && vmm.stdout.contains("cpu 2 inserted sta=0x0f") },
                "\(vmm.stdout)")
        #expect(HotplugFootprint(vmm).threads.filter { $0.hasPrefix("vcpu") } == ["vcpu0", "vcpu1", "vcpu2"])
        #expect(HotplugFootprint(vmm).descriptors == after.descriptors, "the vCPUs were created again")
        #expect(vmm.shutdown() == 0)
    }

    @Test("RAM the guest cannot be told of: unmapped from the guest and the VMM; the next resize maps it at the same place")
    func memory() throws {
        let vmm = try Self.launch("memhotplug", faults: ["ram-announce"], ["--memory", "size=512M,hotplug_size=1G"])
        #expect(eventually(10) { vmm.stdout.contains("memory hotplug guest ready") })
        let before = HotplugFootprint(vmm)
        let failed = vmm.curl("PUT", "vm.resize", body: "{\"desired_ram\":805306368}")
        #expect(failed.status == 500 && failed.body.contains("ram-announce (failure injected by the test)"), "\(failed.body)")
        // The 256M region's mapping is gone too.
        #expect(HotplugFootprint(vmm) == before && HotplugFootprint(vmm).mappings == before.mappings, "\(HotplugFootprint(vmm)) instead of \(before)")
        usleep(300_000)
        #expect(!vmm.stdout.contains("inserted"), "\(vmm.stdout)")
        // The same range in the same slot: nothing of the failed one is left in the way.
        #expect(vmm.curl("PUT", "vm.resize", body: "{\"desired_ram\":805306368}").status == 204)
        #expect(eventually(10) { vmm.stdout.contains("memory slot 0 inserted sta=0x0f base=0x0000000100000000 size=0x0000000010000000") },
                "\(vmm.stdout)")
        #expect(vmm.curl("GET", "vm.info").body.contains("\"memory_actual_size\":805306368"))
        #expect(vmm.shutdown() == 0)
    }
}
