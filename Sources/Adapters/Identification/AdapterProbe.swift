import SafeTensors

/// Reads untrusted bytes through every adapter reader (kohya, PEFT, diffusers, tlkit and the official
/// T-LoRA layout with its hparams.yml) into the adapter model, then loads each module's factors. The
/// fuzzer and its regression tests call this; it must only ever return a summary or a typed error.
///
/// An input that starts with `#hparams` followed by a line break carries the official layout's
/// hparams.yml text up to a `#weights` line; the rest of the input is the safetensors file.
public enum AdapterProbe {
    public enum Outcome: Equatable {
        case read(format: String, modules: Int)
        case rejected(String)
    }

    static let hparamsMark = Array("#hparams\n".utf8), weightsMark = Array("\n#weights\n".utf8)

    public static func probe(_ bytes: [UInt8]) -> Outcome {
        var weights = bytes[...]
        var hparamsText: String?
        if bytes.starts(with: hparamsMark), let end = firstIndex(of: weightsMark, in: bytes) {
            hparamsText = String(decoding: bytes[hparamsMark.count..<end], as: UTF8.self)
            weights = bytes[(end + weightsMark.count)...]
        }
        do {
            let file = try SafeTensorsFile.parse(bytes: Array(weights), name: "<fuzz>")
            let adapter = try AdapterReader.read(file: file, path: "<fuzz>", flags: ScheduleFlags(), hparams: {
                try hparamsText.map { try OfficialHparams.parse($0, path: "<fuzz hparams>") }
            })
            for (index, module) in adapter.modules.enumerated() where isSmall(module) {
                for t in [nil, 0.0, 0.5, 1.0] { _ = try adapter.delta(index, at: t) }
            }
            return .read(format: adapter.format.rawValue, modules: adapter.modules.count)
        } catch {
            return .rejected("\(error)")
        }
    }

    /// Only modules whose factors and ΔW are small are loaded, so each run stays fast.
    private static func isSmall(_ module: ModuleInfo) -> Bool {
        let sizes = [module.rank, module.inFeatures, module.outFeatures]
        guard sizes.allSatisfy({ (0...(1 << 12)).contains($0) }) else { return false }
        return module.inFeatures * module.outFeatures <= 1 << 16 && module.rank * (module.inFeatures + module.outFeatures) <= 1 << 16
    }

    private static func firstIndex(of mark: [UInt8], in bytes: [UInt8]) -> Int? {
        guard bytes.count >= mark.count else { return nil }
        return (0...(bytes.count - mark.count)).first { bytes[$0..<($0 + mark.count)].elementsEqual(mark) }
    }
}
