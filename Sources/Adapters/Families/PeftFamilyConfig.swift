import Foundation

/// PEFT's LoHa/LoKr configuration (`LoHaConfig`, `LoKrConfig`), which `save_pretrained` writes as
/// adapter_config.json beside adapter_model.safetensors: the scale is alpha / r, and neither is in the
/// weights file. `r` and `alpha` apply to every module unless `rank_pattern` / `alpha_pattern` name it.
struct PeftFamilyConfig {
    var rank: Int
    var alpha: Double
    var rankPattern: [String: Int]
    var alphaPattern: [String: Double]

    static let fileName = "adapter_config.json"

    /// The config beside `weights`; an error naming what is missing when there is none.
    static func beside(_ weights: String) throws -> PeftFamilyConfig {
        let path = ((weights as NSString).deletingLastPathComponent as NSString).appendingPathComponent(fileName)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AdapterError("\(weights): a PEFT LoHa/LoKr file scales by alpha / r, which PEFT keeps in \(fileName) beside the weights; there is none at \(path)")
        }
        return try parse(data, path: path)
    }

    static func parse(_ data: Data, path: String) throws -> PeftFamilyConfig {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw AdapterError("\(path): not a JSON object")
        }
        guard let r = (object["r"] as? NSNumber)?.intValue, r > 0 else { throw AdapterError("\(path): no positive integer r") }
        guard let alpha = (object["alpha"] as? NSNumber)?.doubleValue, alpha.isFinite else {
            throw AdapterError("\(path): no finite alpha (LoHaConfig/LoKrConfig's scale numerator)")
        }
        var ranks: [String: Int] = [:], alphas: [String: Double] = [:]
        for (key, value) in object["rank_pattern"] as? [String: Any] ?? [:] {
            guard let n = (value as? NSNumber)?.intValue, n > 0 else { throw AdapterError("\(path): rank_pattern \(key) is not a positive integer") }
            ranks[key] = n
        }
        for (key, value) in object["alpha_pattern"] as? [String: Any] ?? [:] {
            guard let a = (value as? NSNumber)?.doubleValue, a.isFinite else { throw AdapterError("\(path): alpha_pattern \(key) is not a finite number") }
            alphas[key] = a
        }
        return PeftFamilyConfig(rank: r, alpha: alpha, rankPattern: ranks, alphaPattern: alphas)
    }

    func rank(forModule fileName: String) -> Int { Self.match(rankPattern, fileName) ?? rank }
    func alpha(forModule fileName: String) -> Double { Self.match(alphaPattern, fileName) ?? alpha }

    /// A pattern names a module whose path is it or ends with `.` + it (the longest pattern wins), the
    /// same rule `PeftMetadata` applies to LoRA configs.
    static func match<T>(_ patterns: [String: T], _ fileName: String) -> T? {
        for (pattern, value) in patterns.sorted(by: { $0.key.count > $1.key.count })
        where fileName == pattern || fileName.hasSuffix("." + pattern) {
            return value
        }
        return nil
    }
}
