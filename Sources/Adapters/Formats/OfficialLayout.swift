import Foundation
import SafeTensors
import Yams

/// The official T-LoRA training layout: `<attention path>.processor.to_{q,k,v,out}_lora.…` tensors
/// (λ shaped [1, R]; no scale) in `checkpoint-N/pytorch_lora_weights.safetensors`, plus `logs/hparams.yml`.
enum OfficialLayout {
    static func tensors(_ module: ModuleInfo, index: Int, dtype: DType) throws -> [AdapterWriter.Planned] {
        guard let base = ModuleNames.officialName(module.name) else {
            throw AdapterError("\(module.name): the official T-LoRA layout holds only UNet attention projections (to_q, to_k, to_v, to_out.0)")
        }
        let r = module.rank
        typealias P = AdapterWriter.Planned
        if module.isOrtho {
            let parts: [(String, [Int], (Ortho) -> [Float])] = [
                ("q_layer.weight", [r, module.inFeatures], { $0.q }), ("p_layer.weight", [module.outFeatures, r], { $0.p }),
                ("lambda_layer", [1, r], { $0.lambda }), ("base_q.weight", [r, module.inFeatures], { $0.q0 }),
                ("base_p.weight", [module.outFeatures, r], { $0.p0 }), ("base_lambda", [1, r], { $0.lambda0 }),
            ]
            return parts.map { name, shape, pick in
                P(spec: TensorSpec(name: "\(base).\(name)", dtype: dtype, shape: shape), module: index) { f in
                    guard case let .ortho(o) = f else { return [] }
                    return pick(o)
                }
            }
        }
        // The official vanilla layer has no scale: fold it into `up`.
        return [
            P(spec: TensorSpec(name: "\(base).down.weight", dtype: dtype, shape: [r, module.inFeatures]), module: index) { f in
                guard case let .lowRank(l) = f else { return [] }
                return l.down
            },
            P(spec: TensorSpec(name: "\(base).up.weight", dtype: dtype, shape: [module.outFeatures, r]), module: index) { f in
                guard case let .lowRank(l) = f else { return [] }
                return l.scale == 1 ? l.up : l.up.map { $0 * l.scale }
            },
        ]
    }

    /// Creates `DIR/checkpoint-N/` and writes `DIR/logs/hparams.yml`; returns the weights path.
    static func prepareFolder(_ folder: String, adapter: Adapter) throws -> String {
        guard let schedule = adapter.schedule else {
            throw AdapterError("the official T-LoRA layout needs a schedule (give --min-rank, or bake with --at-timestep and write another format)")
        }
        let steps = adapter.metadata["tlora.steps"].flatMap(Int.init) ?? 0
        let fm = FileManager.default
        let checkpoint = (folder as NSString).appendingPathComponent("checkpoint-\(steps)")
        let logs = (folder as NSString).appendingPathComponent("logs")
        do {
            try fm.createDirectory(atPath: checkpoint, withIntermediateDirectories: true)
            try fm.createDirectory(atPath: logs, withIntermediateDirectories: true)
        } catch {
            throw AdapterError("\(folder): cannot create the output folders: \(error.localizedDescription)")
        }
        let trainer = adapter.scheduledMethod.officialTrainer
        let hparams: [String: Any] = [
            "trainer_class": trainer.trainerClass,
            "trainer_type": trainer.trainerType,
            "lora_rank": schedule.maxRank,
            "min_rank": schedule.minRank,
            "alpha_rank_scale": schedule.rankAlpha,
            "sig_type": adapter.metadata["tlora.init"] ?? "last",
            "placeholder_token": adapter.metadata["tlora.token"] ?? "sks",
            "class_name": adapter.metadata["tlora.class"] ?? "",
            "pretrained_model_name_or_path": "stabilityai/stable-diffusion-xl-base-1.0",
            "output_dir": (folder as NSString).standardizingPath,
        ]
        let text = try Yams.dump(object: hparams, sortKeys: true)
        let output = try AtomicOutput((logs as NSString).appendingPathComponent("hparams.yml"))
        try output.write(Array(text.utf8))
        try output.commit()
        return (checkpoint as NSString).appendingPathComponent("pytorch_lora_weights.safetensors")
    }
}
