import Adapters
import Engine
import Foundation
import SafeTensors

/// A training run's output folder (issue: `tlkit train --output DIR`):
///   DIR/train.json                              settings and the loss of every step
///   DIR/checkpoint-N/adapter.safetensors        the tlkit T-LoRA file after N steps
///   DIR/checkpoint-N/optimizer.safetensors      AdamW moments — only beside the newest checkpoint
///   DIR/adapter.safetensors                     the final adapter
/// A checkpoint is written into a hidden folder and renamed into place, so a failure (a full disk, a
/// second Ctrl-C) leaves the previous checkpoint, with its optimizer state, intact.
public struct RunFolder {
    public let path: String

    public init(_ path: String) { self.path = path }

    var recordPath: String { "\(path)/train.json" }
    public var finalAdapterPath: String { "\(path)/adapter.safetensors" }
    public func checkpointPath(_ steps: Int) -> String { "\(path)/checkpoint-\(steps)" }
    static let optimizerFile = "optimizer.safetensors"
    func optimizerPath(_ steps: Int) -> String { "\(checkpointPath(steps))/\(Self.optimizerFile)" }

    /// Steps of the newest checkpoint that still has its optimizer state (what `--resume` continues).
    public var newestResumable: Int? {
        checkpoints.last { FileManager.default.fileExists(atPath: optimizerPath($0)) }
    }

    /// Steps of the checkpoints present, ascending.
    public var checkpoints: [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.compactMap { $0.hasPrefix("checkpoint-") ? Int($0.dropFirst("checkpoint-".count)) : nil }.sorted()
    }

    /// Whether the folder holds anything of a run (a fresh run refuses it unless resuming).
    public var holdsRun: Bool {
        FileManager.default.fileExists(atPath: recordPath) || !checkpoints.isEmpty
            || FileManager.default.fileExists(atPath: finalAdapterPath)
    }

    public func create() throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw TrainingError.badSetting("cannot create the output folder \(path): \(error.localizedDescription)")
        }
    }

    // MARK: train.json

    public struct Record: Codable {
        public var settings: TrainingSettings
        /// Loss of each completed step, in order.
        public var losses: [Double]
        public var secondsPerStep: Double?
        public var finished: Bool

        public init(settings: TrainingSettings, losses: [Double], secondsPerStep: Double?, finished: Bool) {
            self.settings = settings
            self.losses = losses
            self.secondsPerStep = secondsPerStep
            self.finished = finished
        }
    }

    public func writeRecord(_ record: Record) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let output = try AtomicOutput(recordPath)
        try output.write(Array(try encoder.encode(record)) + [10])
        try output.commit()
    }

    public func readRecord() throws -> Record {
        guard let data = FileManager.default.contents(atPath: recordPath) else {
            throw TrainingError.badCheckpoint("\(recordPath) is missing")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do { return try decoder.decode(Record.self, from: data) } catch {
            throw TrainingError.badCheckpoint("\(recordPath) is not a tlkit training record (\(error))")
        }
    }

    // MARK: checkpoints

    /// Writes checkpoint-`steps` (adapter + optimizer state), then drops the optimizer state of older ones.
    public func writeCheckpoint(steps: Int, adapter: Adapter, optimizer: AdamW, parameterNames: [String]) throws {
        let final = checkpointPath(steps)
        let staging = "\(path)/.checkpoint-\(steps).partial"
        try? FileManager.default.removeItem(atPath: staging)
        do {
            try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: false)
            try AdapterWriter.write(adapter, format: .tlora, to: "\(staging)/adapter.safetensors")
            try writeOptimizer(optimizer, names: parameterNames, to: "\(staging)/\(Self.optimizerFile)")
            try? FileManager.default.removeItem(atPath: final)
            try FileManager.default.moveItem(atPath: staging, toPath: final)
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw TrainingError.numericFailure("cannot write \(final): \(error)")
        }
        for older in checkpoints where older != steps {
            try? FileManager.default.removeItem(atPath: optimizerPath(older))
        }
    }

    func writeOptimizer(_ optimizer: AdamW, names: [String], to file: String) throws {
        var specs: [TensorSpec] = [], values: [String: Tensor<Float>] = [:]
        for (i, name) in names.enumerated() {
            for (suffix, t) in [("exp_avg", optimizer.firstMoments[i]), ("exp_avg_sq", optimizer.secondMoments[i])] {
                specs.append(TensorSpec(name: "\(name).\(suffix)", dtype: .f32, shape: t.shape))
                values["\(name).\(suffix)"] = t
            }
        }
        let settings = String(decoding: try JSONEncoder().encode(optimizer.settings), as: UTF8.self)
        let metadata = ["tlkit.optimizer": "adamw", "tlkit.optimizer_step": String(optimizer.step), "tlkit.optimizer_settings": settings]
        try SafeTensorsWriter.write(to: file, metadata: metadata, tensors: specs) { info in
            let t = values[info.name]!
            return Array(UnsafeRawBufferPointer(start: t.data, count: t.count * 4))
        }
    }

    /// The optimizer state saved beside checkpoint-`steps`, for parameters named and shaped as given.
    public func readOptimizer(steps: Int, settings: AdamW.Settings, parameters: [(name: String, tensor: Tensor<Float>)]) throws -> AdamW {
        let file = optimizerPath(steps)
        guard FileManager.default.fileExists(atPath: file) else {
            throw TrainingError.badCheckpoint("\(file) is missing (optimizer state is kept beside the newest checkpoint only)")
        }
        let st = try SafeTensorsFile.open(file)
        guard let step = st.metadata["tlkit.optimizer_step"].flatMap(Int.init) else {
            throw TrainingError.badCheckpoint("\(file) has no optimizer step")
        }
        var first: [Tensor<Float>] = [], second: [Tensor<Float>] = []
        for (name, tensor) in parameters {
            for (suffix, isFirst) in [("exp_avg", true), ("exp_avg_sq", false)] {
                guard let info = st.tensors.first(where: { $0.name == "\(name).\(suffix)" }), info.shape == tensor.shape else {
                    throw TrainingError.badCheckpoint("\(file) has no \(name).\(suffix) of shape \(tensor.shape)")
                }
                let t = Tensor<Float>(shape: info.shape, values: try st.floats(info))
                if isFirst { first.append(t) } else { second.append(t) }
            }
        }
        return AdamW(settings: settings, firstMoments: first, secondMoments: second, step: step)
    }
}
