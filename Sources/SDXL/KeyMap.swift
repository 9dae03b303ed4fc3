/// The one place where single-file (SGM, LDM, OpenCLIP) and diffusers tensor names meet.
///
/// Every mapping is a table of module-prefix pairs generated from the model's structure (never guessed
/// with string splits), plus small tables of renamed leaves; `KeyMap` answers both directions.
public struct KeyMap: Sendable {
    public let component: Component
    /// Single-file name (without the component prefix) → mapping.
    private var bySingleFile: [String: [TensorMapping]] = [:]
    private var byDiffusers: [String: TensorMapping] = [:]

    public var mappings: [TensorMapping] { byDiffusers.values.sorted { $0.diffusersName < $1.diffusersName } }

    /// The diffusers name(s) a single-file tensor becomes (three for OpenCLIP `in_proj_*`).
    public func diffusers(forSingleFile name: String) -> [TensorMapping] { bySingleFile[name] ?? [] }
    public func singleFile(forDiffusers name: String) -> TensorMapping? { byDiffusers[name] }

    /// Builds the map from the single-file tensor names present (without the component prefix).
    public init(component: Component, singleFileNames: [String], unetStructure: UNetStructure? = nil) {
        self.component = component
        let vaeLevels = component == .vae ? VAENames.levels(singleFileNames) : 0
        let unetTables = component == .unet ? unetStructure.map(UNetNames.tables(for:)) : nil
        for name in singleFileNames {
            for mapping in KeyMap.translate(component: component, singleFileName: name, unet: unetTables, vaeLevels: vaeLevels) {
                bySingleFile[name, default: []].append(mapping)
                byDiffusers[mapping.diffusersName] = mapping
            }
        }
    }

    static func translate(component: Component, singleFileName name: String, unet: UNetNames.Tables?, vaeLevels: Int) -> [TensorMapping] {
        switch component {
        case .unet:
            guard let unet else { return [] }
            return unet.toDiffusers(name).map { [TensorMapping(diffusersName: $0, singleFileName: name, transform: .identity)] } ?? []
        case .vae:
            return VAENames.toDiffusers(name, levels: vaeLevels).map { [$0] } ?? []
        case .textEncoder:
            // CLIP-L keeps Hugging Face names inside the single file.
            return [TensorMapping(diffusersName: name, singleFileName: name, transform: .identity)]
        case .textEncoder2:
            return OpenCLIPNames.toDiffusers(name)
        }
    }
}

/// A prefix table: the first matching (longest) prefix is replaced.
struct PrefixTable {
    private let pairs: [(from: String, to: String)]

    init(_ pairs: [(String, String)]) {
        self.pairs = pairs.map { (from: $0.0, to: $0.1) }.sorted { $0.from.count > $1.from.count }
    }

    func rename(_ name: String) -> String? {
        for pair in pairs where name.hasPrefix(pair.from) {
            return pair.to + name.dropFirst(pair.from.count)
        }
        return nil
    }
}
