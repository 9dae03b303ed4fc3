#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the catalog lives when no path is given.
public enum CatalogLocation {
    /// `--catalog PATH`, else `$TLKIT_CATALOG`, else `$XDG_DATA_HOME/tlkit/catalog.sqlite`, else
    /// `~/.local/share/tlkit/catalog.sqlite`. Empty variables count as unset (as the XDG spec says).
    public static func resolve(explicit: String?, environment: [String: String]) -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        if let path = environment["TLKIT_CATALOG"], !path.isEmpty { return path }
        if let data = environment["XDG_DATA_HOME"], data.hasPrefix("/") { return data + "/tlkit/catalog.sqlite" }
        return home(environment) + "/.local/share/tlkit/catalog.sqlite"
    }

    /// The scheme of a catalog argument that looks like a URL (`postgresql://…`, any `scheme://`).
    /// Such an argument is never a path: a file named after it would hold whatever credentials it carries.
    public static func urlScheme(_ path: String) -> String? {
        guard let end = path.range(of: "://")?.lowerBound, end != path.startIndex else { return nil }
        let scheme = path[..<end]
        guard scheme.first!.isASCII, scheme.first!.isLetter,
              scheme.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+.-".contains($0)) }) else { return nil }
        return String(scheme)
    }

    static func home(_ environment: [String: String]) -> String {
        if let home = environment["HOME"], !home.isEmpty { return home }
        if let entry = getpwuid(getuid()), let dir = entry.pointee.pw_dir { return String(cString: dir) }
        return "."
    }
}

/// Small file-system helpers the catalog needs.
public enum FileSystem {
    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    static func size(_ path: String) -> Int? {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : nil
    }

    /// Creates `path` and any missing parents (mode 0755).
    static func makeFolders(_ path: String) throws {
        if path.isEmpty || exists(path) { return }
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            try makeFolders(String(path[..<slash]))
        }
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw CatalogError.io("\(path): cannot create the catalog folder: \(String(cString: strerror(errno)))")
        }
    }

    static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
