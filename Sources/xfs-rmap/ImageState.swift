import XFSFormat

/// An opened image, its AGs, and the paths (image, log device) a mounted filesystem uses,
/// which `--force-mounted` let through.
struct OpenedImage {
    var image: XFSImage
    var ags: [UInt32]
    var inUse: [(path: String, state: MountState)]

    /// One sentence per path in use, for warnings.
    var mountWarnings: [String] {
        inUse.map { "\($0.path) is \($0.state): it may change while it is read, so the results may show false damage" }
    }

    /// The `"mount"` field of check's JSON document: the first path in use, or not mounted.
    var mountJSONField: String {
        let (state, mountPoint, device): (String, String?, String?) = switch inUse.first?.state ?? .notMounted {
        case .notMounted: ("not_mounted", nil, nil)
        case let .mounted(mountPoint, device): ("mounted", mountPoint, device)
        case let .inUse(device): ("in_use", nil, device)
        }
        return "\"mount\": {\"state\": \"\(state)\", \"mount_point\": \(mountPoint.map(CheckJSON.string) ?? "null"), "
            + "\"device\": \(device.map(CheckJSON.string) ?? "null")}"
    }
}

/// The refusal of images that mounted filesystems use.
enum MountCheck {
    /// Why `path` must not be written, or nil: a mounted filesystem uses it, or whether
    /// one does cannot be told (a writer refuses then too). The rebuild's and undo's
    /// writer ask this before they open the image.
    static func reasonInUse(_ path: String) -> String? {
        do {
            let state = try MountState.of(path: path)
            return state.isInUse ? "\(state): unmount it first" : nil
        } catch {
            return "cannot tell whether it is mounted (\(error))"
        }
    }

    /// The paths among `paths` that a mounted filesystem uses. Unless `force`, the first one
    /// ends the tool (exit 2) with a message naming the mount point; with `force`, a path
    /// whose state cannot be found counts as not in use.
    static func devicesInUse(_ paths: [String], force: Bool) throws -> [(path: String, state: MountState)] {
        var inUse: [(path: String, state: MountState)] = []
        for path in paths {
            let state: MountState
            do {
                state = try MountState.of(path: path)
            } catch {
                if force { continue }
                throw ToolFailure(description: "cannot tell whether \(path) is mounted: \(error) (--force-mounted reads it anyway)")
            }
            guard state.isInUse else { continue }
            if !force {
                throw ToolFailure(description: "\(path) is \(state): unmount it first, or pass --force-mounted "
                    + "(a filesystem in use changes while it is read, so the results may show false damage)")
            }
            inUse.append((path, state))
        }
        return inUse
    }
}

/// What check says about the log: nothing in text when it is clean, a warning when it is
/// dirty or cannot be read, and a `"log"` field in JSON either way.
struct LogReport {
    /// The log's state, or why it could not be found.
    var state: Result<LogState, any Error>

    /// Reads the image's log (internal, or on its external log device).
    init(_ image: XFSImage) {
        state = Result { try image.readLogState() }
    }

    /// The advice both warnings end with.
    private static let advice = "the verdict may be stale: mount and unmount the filesystem to replay it, or run xfs_repair -L"

    /// The warning lines for text output (none for a clean log).
    var warnings: [String] {
        switch state {
        case let .success(log) where log.isClean: []
        case let .success(log): ["the log is dirty (head \(log.head), tail \(log.tail)); \(Self.advice)"]
        case let .failure(error): ["the log's head and tail cannot be found (\(error)); \(Self.advice)"]
        }
    }

    /// The `"log"` field of check's JSON document.
    var jsonField: String {
        switch state {
        case let .success(log):
            "\"log\": {\"clean\": \(log.isClean), \"head_cycle\": \(log.head.cycle), \"head_block\": \(log.head.block), "
                + "\"tail_cycle\": \(log.tail.cycle), \"tail_block\": \(log.tail.block)}"
        case let .failure(error):
            "\"log\": {\"clean\": false, \"head_cycle\": null, \"head_block\": null, \"tail_cycle\": null, "
                + "\"tail_block\": null, \"error\": \(CheckJSON.string("\(error)"))}"
        }
    }
}
