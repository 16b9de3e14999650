import ArgumentParser
import DinoDepth
import DinoDiscovery
import DinoImage
import DinoModel
import DinoPipeline
import DinoSegmentation
import Foundation

/// The heads `dino predict --head NAME=ARGUMENT` can run: registering a head with the tool is one
/// line here.
let registeredHeads = [
    HeadRegistration(SegmentationImageHead.self),
    HeadRegistration(DepthImageHead.self),
    HeadRegistration(DiscoveryImageHead.self),
]

/// `dino predict`: several heads on the same images, one backbone pass per batch.
struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Run several heads on the same images with one backbone pass per batch.",
        discussion: """
            Each --head NAME=ARGUMENT adds a head; every head writes the files its own command \
            writes (bit for bit the same), and the backbone runs once per batch on the union of \
            what the heads read (a head with its own backbone, such as Depth Anything, gets its \
            own pass). Heads:
            \(registeredHeads.map { "  \($0.name)=ARG: \($0.argumentHelp)" }.joined(separator: "\n"))

            Images are prepared as the first head prepares them (segment: as its head was \
            trained, else --resize 448; depth: --resize 448, or Depth Anything's processor; \
            discover: padded bottom/right) unless a preset is given. --json writes one record \
            per image, {"image", "<head>": <its record>, ...}.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var images: ImageInputOptions
    @OptionGroup var preprocess: PreprocessOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var report: ReportOptions

    @Option(name: .customLong("head"), help: ArgumentHelp("A head to run, NAME=ARGUMENT (repeat for several).", valueName: "name=argument"))
    var heads: [String] = []

    func validate() throws {
        if heads.isEmpty { throw ValidationError("give at least one --head NAME=ARGUMENT") }
        if images.inputs.isEmpty { throw ValidationError("give image files, folders or globs") }
        var names = Set<String>()
        for spec in heads {
            let name = try Self.split(spec).name
            guard registeredHeads.contains(where: { $0.name == name }) else {
                throw ValidationError("--head \(spec): " + PipelineError.unknownHead(name: name, known: registeredHeads.map(\.name)).description)
            }
            guard names.insert(name).inserted else { throw ValidationError("--head \(name) is given twice") }
        }
    }

    static func split(_ spec: String) throws -> (name: String, argument: String) {
        guard let equals = spec.firstIndex(of: "="), equals != spec.startIndex, spec.index(after: equals) != spec.endIndex else {
            throw ValidationError("--head \(spec) must be NAME=ARGUMENT")
        }
        return (String(spec[..<equals]), String(spec[spec.index(after: equals)...]))
    }

    func run() throws {
        let (model, folder) = try modelOptions.load()
        var loaded: [any ImageHead] = []
        var names: [String] = []
        for spec in heads {
            let (name, argument) = try Self.split(spec)
            guard let registration = registeredHeads.first(where: { $0.name == name }) else { continue }
            loaded.append(try registration.load(argument: argument, model: model, modelFolder: folder))
            names.append(name)
        }
        try runHeads(loaded, names: names, model: model, modelFolder: folder, label: "predict",
                     images: images, preprocess: preprocess, output: output, report: report)
    }
}

/// Runs image heads over the images the options name, through the one image runner.
func runHeads(_ heads: [any ImageHead], names: [String], model: VisionTransformer, modelFolder: URL, label: String,
              images: ImageInputOptions, preprocess: PreprocessOptions, output: OutputOptions, report: ReportOptions) throws {
    guard let first = heads.first else { return }
    let preparation = try preprocess.userPreset(modelFolder: modelFolder) ?? first.preparation
    let patchSizes = Set(heads.map(\.backbone.configuration.patchSize))
    guard patchSizes.count == 1, let patchSize = patchSizes.first else {
        throw ValidationError("the heads' backbones have different patch sizes (\(patchSizes.sorted())); run them separately")
    }
    let pipeline = HeadPipeline(heads: heads, folder: output.folder)
    var runner = ImageRunner(inputs: images, preparation: preparation, patchSize: patchSize, label: label,
                             outputs: OutputPlan(folder: pipeline.folder, suffixes: pipeline.outputSuffixes))
    try runner.run(pipeline, names: names, report: report)
    try runner.finish()
}
