import CVMMCore

#if canImport(Glibc)
import Glibc
#endif

/// A `--disk` image, opened and locked once per launch while the VMM may
/// still be privileged; every boot's virtio-blk device serves this fd.
///
/// The lock is an OFD lock on the whole file, as Cloud Hypervisor takes
/// it: shared for `readonly=on`, exclusive otherwise, so two VMMs never
/// write one image. Closing the fd releases it.
final class DiskImage {
    let config: DiskConfig
    private let descriptor: OwnedDescriptor
    var fd: Int32 { descriptor.raw }
    let sizeBytes: UInt64
    /// GET_ID's answer: `serial=`, or an id derived from the file, as Cloud Hypervisor does.
    let serial: String

    /// `locking` false: a migration's destination, which locks later.
    init(_ config: DiskConfig, locking: Bool = true) throws(VMMError) {
        self.config = config
        let path = config.path
        func refuse(_ reason: String) -> VMMError {
            .config(.invalidValue(option: "--disk", key: "path", value: path, reason: reason))
        }
        var st = stat()
        guard stat(path, &st) == 0 else {
            let error = errno
            throw error == ENOENT ? refuse("no such file (create one, e.g. truncate -s 1G \(path))")
                                  : refuse(String(cString: strerror(error)))
        }
        let type = st.st_mode & S_IFMT
        guard type == S_IFREG || type == S_IFBLK else {
            throw refuse(type == S_IFDIR ? "is a directory, not a disk image" : "is not a regular file or block device")
        }
        let opened = open(path, (config.readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC)
        guard opened >= 0 else {
            let error = errno
            guard error == EACCES || error == EROFS || error == EPERM else { throw refuse(String(cString: strerror(error))) }
            throw config.readonly
                ? refuse("cannot be opened (\(String(cString: strerror(error)))): check its permissions, and with --landlock that a --landlock-rules path covers it")
                : refuse("cannot be opened for writing (\(String(cString: strerror(error)))); readonly=on gives the guest a read-only disk")
        }
        // Closed by its owner on every way out, this init's failures too.
        descriptor = OwnedDescriptor(opened)
        let end = lseek(opened, 0, SEEK_END)
        guard end >= 0 else {
            throw refuse("cannot find its size: \(String(cString: strerror(errno)))")
        }
        sizeBytes = UInt64(end)
        if let format = Self.otherFormat(fd: opened, size: sizeBytes) {
            throw .config(.notSupported("--disk path=\(path): a \(format) image (only raw images for now; convert it with qemu-img convert -O raw)"))
        }
        serial = config.serial ?? String("\(st.st_dev)\(st.st_rdev)\(st.st_ino)".prefix(20))
        identity = (st.st_dev, st.st_ino)
        if locking { try lock() }
    }

    private let identity: (device: dev_t, inode: ino_t)

    /// Takes the image's lock; a migration's destination takes it only
    /// once the source has let go (`unlock`), with the guest stopped.
    func lock() throws(VMMError) {
        func refuse(_ reason: String) -> VMMError {
            .config(.invalidValue(option: "--disk", key: "path", value: config.path, reason: reason))
        }
        var lock = flock()
        lock.l_type = Int16(config.readonly ? F_RDLCK : F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        // Cloud Hypervisor's byte-range lock covers the image's bytes; length 0 is the whole file.
        lock.l_len = config.lockWholeFile ? 0 : off_t(sizeBytes)
        guard fcntl(fd, Int32(VMM_F_OFD_SETLK), &lock) == 0 else {
            switch Self.lockHolder(device: identity.device, inode: identity.inode) {
            case let holder? where holder.pid == getpid():
                throw refuse("is already one of this VM's disks: an image is used by one disk at a time (readonly=on disks can share one)")
            case let holder?:
                throw refuse("is locked by pid \(holder.pid) (\(holder.command)): an image is used by one VM at a time (readonly=on disks can share one)")
            case nil:
                throw refuse("is locked by another process: an image is used by one VM at a time (readonly=on disks can share one)")
            }
        }
    }

    /// Lets the image go to a migration's destination: what the guest
    /// wrote is on the disk first.
    func unlock() throws(VMMError) {
        guard fsync(fd) == 0 else { throw .system(SystemError("migration: flush --disk path=\(config.path)", errno: errno)) }
        var lock = flock()
        lock.l_type = Int16(F_UNLCK)
        lock.l_whence = Int16(SEEK_SET)
        guard fcntl(fd, Int32(VMM_F_OFD_SETLK), &lock) == 0 else {
            throw .system(SystemError("migration: unlock --disk path=\(config.path)", errno: errno))
        }
    }

    /// The name of a disk format this is not raw, from its magic.
    static func otherFormat(fd: Int32, size: UInt64) -> String? {
        var head = [UInt8](repeating: 0, count: 512)
        let n = pread(fd, &head, head.count, 0)
        guard n > 0 else { return nil }
        let start = head.prefix(n)
        let magics: [(String, [UInt8])] = [
            ("qcow2", [0x51, 0x46, 0x49, 0xfb]), ("vhdx", Array("vhdxfile".utf8)),
            ("vhd", Array("conectix".utf8)), ("vmdk", Array("KDMV".utf8)),
        ]
        for (name, magic) in magics where start.starts(with: magic) { return name }
        // A fixed VHD is raw data with a footer at the end.
        if size >= 512 {
            var footer = [UInt8](repeating: 0, count: 8)
            if pread(fd, &footer, 8, off_t(size - 512)) == 8, footer == Array("conectix".utf8) { return "vhd" }
        }
        return nil
    }

    /// The process holding an OFD lock on the file (this one included), from
    /// /proc/PID/fdinfo (an OFD lock itself records no pid).
    static func lockHolder(device: dev_t, inode: ino_t) -> (pid: Int32, command: String)? {
        let dev = UInt64(device)
        let major = (dev >> 8) & 0xfff | (dev >> 32) & ~UInt64(0xfff)
        let minor = dev & 0xff | (dev >> 12) & ~UInt64(0xff)
        let wanted = "\(hex2(major)):\(hex2(minor)):\(inode)"
        guard let proc = opendir("/proc") else { return nil }
        defer { closedir(proc) }
        while let entry = readdir(proc) {
            let pid = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let number = Int32(pid), let fds = opendir("/proc/\(pid)/fdinfo") else { continue }
            defer { closedir(fds) }
            while let fdEntry = readdir(fds) {
                let name = withUnsafeBytes(of: fdEntry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                guard Int(name) != nil, let text = readSmallFile("/proc/\(pid)/fdinfo/\(name)") else { continue }
                for line in text.split(separator: "\n") where line.hasPrefix("lock:") && line.split(separator: " ").contains(Substring(wanted)) {
                    let comm = readSmallFile("/proc/\(pid)/comm")?.split(separator: "\n").first.map(String.init) ?? "?"
                    return (number, comm)
                }
            }
        }
        return nil
    }

    private static func hex2(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return digits.count < 2 ? "0" + digits : digits
    }

    private static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = read(fd, &buffer, buffer.count)
        return n > 0 ? String(decoding: buffer.prefix(n), as: UTF8.self) : nil
    }
}
