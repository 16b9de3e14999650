import ArgumentParser
import DinoImage
import DinoModel
import DinoPipeline
import DinoTensor
import Foundation

/// `dino classify`: top-k labels of a classification checkpoint.
struct ClassifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Print the top-k labels and probabilities of a classification checkpoint.",
        discussion: """
            Needs a checkpoint with a classifier (Dinov2*ForImageClassification: logits from \
            concat(CLS, mean of patch tokens)) and its id2label. Images get the classification \
            preprocessing (the model folder's preprocessor_config.json, else shortest edge 256, \
            center crop 224) unless another preset is given. With --json the results are also \
            written as a JSON array.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var images: ImageInputOptions
    @OptionGroup var preprocess: PreprocessOptions

    @Option(name: .long, help: "How many labels to print per image.")
    var topK = 5

    @OptionGroup var report: ReportOptions

    func validate() throws {
        if images.inputs.isEmpty { throw ValidationError("give image files, folders or globs") }
        if topK < 1 { throw ValidationError("--top-k must be at least 1") }
        if images.resume && report.json == nil { throw ValidationError("--resume needs --json: classify writes no per-image files, it resumes from its JSON") }
    }

    func run() throws {
        let (vit, folder) = try modelOptions.load()
        guard let labels = vit.classLabels else {
            throw ValidationError("\(modelOptions.model) has no classifier; classify needs a *ForImageClassification checkpoint")
        }
        let preset = try preprocess.userPreset(modelFolder: folder) ?? PreprocessOptions.modelProcessor(modelFolder: folder)
        var runner = ImageRunner(inputs: images, preparation: preset, patchSize: vit.configuration.patchSize, label: "classify", outputs: nil)
        let earlier = try report.earlierRecords(resume: images.resume)
        runner.reported = Set(earlier.compactMap { $0["image"]?.stringValue })
        var records: [JSONValue] = []
        runner.run { batch in
            let pass = try vit.features(Tensor.stack(batch.map(\.prepared.pixels)), request: FeatureRequest(logits: true))
            guard let logits = pass.logits else { return batch.map { ($0, "no logits") } }
            let k = labels.count
            for (i, item) in batch.enumerated() {
                let predictions = ClassScore.top(topK, logits: Array(logits.scalars[(i * k)..<((i + 1) * k)]), labels: labels)
                print("\(item.url.path): " + predictions.map { String(format: "%@ %.4f", $0.label, $0.probability) }.joined(separator: ", "))
                records.append(.object([
                    ("image", .string(item.url.path)),
                    ("predictions", .array(predictions.map { p in
                        .object([("label", .string(p.label)), ("index", .number(String(p.index))), ("probability", .number(String(p.probability)))])
                    })),
                ]))
            }
            return []
        }
        try report.write(earlier: earlier, new: records)
        try runner.finish()
    }
}
