import DinoImage
import Foundation

extension Segmenter {
    /// Segments every image of `dataset` at its original size and scores the predictions
    /// against its masks (`reduce_zero_label` applied for ADE20K).
    ///
    /// - Parameters:
    ///   - prediction: called with each sample and its predicted label map (to save them).
    ///   - progress: called after each image with (done, total, image name).
    public func evaluate(_ dataset: SegmentationDataset, preprocessing: Preprocessing, mode: InferenceMode = .whole,
                         prediction: (SegmentationSample, LabelMap) throws -> Void = { _, _ in },
                         progress: (Int, Int, String) -> Void = { _, _, _ in }) throws -> SegmentationMetrics {
        var metrics = SegmentationMetrics(numClasses: head.numClasses)
        for (i, sample) in dataset.samples.enumerated() {
            let image: RGBImage
            let prepared: PreparedImage
            do {
                image = try ImageIO.read(sample.image)
                prepared = try preprocessing.prepare(image, patchSize: patchSize)
            } catch {
                throw SegmentationError.image(error)
            }
            let truth = try dataset.labels(of: sample)
            guard truth.width == image.width, truth.height == image.height else {
                throw SegmentationError.sizeMismatch(what: "mask \(sample.mask.path)", expected: "\(image.width)x\(image.height) (its image)",
                                                     actual: "\(truth.width)x\(truth.height)")
            }
            let predicted = try segment(prepared, mode: mode)
            try metrics.add(prediction: predicted, truth: truth, path: sample.mask.path)
            try prediction(sample, predicted)
            progress(i + 1, dataset.samples.count, sample.image.lastPathComponent)
        }
        return metrics
    }
}
