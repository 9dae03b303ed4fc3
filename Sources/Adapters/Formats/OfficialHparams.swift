import Foundation
import Yams

/// The parts of the official trainer's `logs/hparams.yml` that describe a checkpoint.
public struct OfficialHparams: Equatable, Sendable {
    public var trainerClass: String?
    public var trainerType: String?
    public var loraRank: Int?
    public var minRank: Int?
    public var rankAlpha: Double?
    public var sigType: String?
    public var placeholderToken: String?
    public var className: String?
    public var pretrainedModel: String?
    /// The FLUX.1 trainer's `tlora` switch (masked vanilla T-LoRA when true, plain LoRA when false); it
    /// writes `rank` and `min_rank` and no trainer class.
    public var fluxTlora: Bool? = nil
    /// Where the file was read from.
    public var path: String

    /// The method the trainer class/type pair (or the FLUX trainer's `tlora` switch) names; nil for a pair
    /// tlkit does not know.
    public var method: AdapterMethod? {
        AdapterMethod(trainerClass: trainerClass, trainerType: trainerType) ?? fluxTlora.map { AdapterMethod(masked: $0, ortho: false) }
    }

    /// `checkpoint-N/pytorch_lora_weights.safetensors` → `../logs/hparams.yml`, when it exists. Only a
    /// file on disk has one: standard input (`-`) and catalog entries (`catalog:REF`) do not, whatever
    /// lies beside the working folder.
    public static func locate(forWeights path: String) -> String? {
        guard path != "-", FileManager.default.fileExists(atPath: path) else { return nil }
        let folder = (path as NSString).deletingLastPathComponent
        let candidate = (((folder.isEmpty ? "." : folder) as NSString).appendingPathComponent("../logs/hparams.yml") as NSString).standardizingPath
        return FileManager.default.fileExists(atPath: candidate) ? candidate : nil
    }

    public static func load(_ path: String) throws -> OfficialHparams {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw HparamsError(path: path, message: "cannot read: \(error.localizedDescription)")
        }
        return try parse(text, path: path)
    }

    /// Interprets the text of an hparams.yml; `path` only names it in errors.
    public static func parse(_ text: String, path: String) throws -> OfficialHparams {
        let parsed: Any?
        do { parsed = try Yams.load(yaml: text) } catch {
            throw HparamsError(path: path, message: "not valid YAML: \(error)")
        }
        guard let map = parsed as? [String: Any] else { throw HparamsError(path: path, message: "not a YAML mapping") }
        func int(_ key: String) -> Int? {
            if let v = map[key] as? Int { return v }
            // Int(.inf) or Int(1e300) would trap; such a value is simply not a count.
            if let v = map[key] as? Double, v == v.rounded(), abs(v) < 1e15 { return Int(v) }
            return (map[key] as? String).flatMap(Int.init)
        }
        func double(_ key: String) -> Double? {
            if let v = map[key] as? Double { return v }
            if let v = map[key] as? Int { return Double(v) }
            return (map[key] as? String).flatMap(Double.init)
        }
        var hparams = OfficialHparams(trainerClass: map["trainer_class"] as? String, trainerType: map["trainer_type"] as? String,
                               loraRank: int("lora_rank") ?? int("rank"), minRank: int("min_rank"), rankAlpha: double("alpha_rank_scale"),
                               sigType: map["sig_type"] as? String, placeholderToken: map["placeholder_token"] as? String,
                               className: map["class_name"] as? String,
                               pretrainedModel: map["pretrained_model_name_or_path"] as? String, path: path)
        if map["trainer_class"] == nil { hparams.fluxTlora = map["tlora"] as? Bool }
        return hparams
    }
}

public struct HparamsError: Error, CustomStringConvertible {
    public let path: String
    public let message: String
    public var description: String { "\(path): \(message)" }
}
