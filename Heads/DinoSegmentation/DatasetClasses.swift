/// Class names of the two datasets the released dinov2 heads were trained on.
public enum DatasetClasses {
    /// Pascal VOC 2012: 21 classes, index 0 is the background.
    public static let voc: [String] = [
        "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
        "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
    ]

    /// ADE20K (SceneParsing, `objectInfo150`): 150 classes after `reduce_zero_label`, i.e.
    /// index 0 here is the file's label 1 ("wall"); the file's label 0 ("other") is ignored.
    public static let ade20k: [String] = [
        "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet",
        "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
        "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk",
        "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
        "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand",
        "path", "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
        "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove",
        "palm", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus",
        "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver",
        "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle",
        "buffet", "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything",
        "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven",
        "ball", "food", "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle", "lake",
        "dishwasher", "screen", "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray",
        "ashcan", "fan", "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator",
        "glass", "clock", "flag",
    ]

    /// Generic names `class0`, `class1`, ... for `count` classes.
    public static func numbered(_ count: Int) -> [String] { (0..<max(count, 0)).map { "class\($0)" } }

    /// The classes of a head trained on a dataset: the dataset's names (`datasetNames`, extended
    /// with numbered ones up to `count` when more are asked for), else `count` numbered names,
    /// else one per label up to the masks' largest.
    public static func forTraining(datasetNames: [String]?, count: Int?, largestLabel: Int?) throws(SegmentationError) -> [String] {
        let needed = (largestLabel ?? -1) + 1
        var names = datasetNames ?? numbered(count ?? needed)
        if let count, datasetNames != nil, count != names.count {
            guard count > names.count else {
                throw .invalidSetting(name: "classes", reason: "\(count) is fewer than the \(names.count) classes the dataset names")
            }
            names += numbered(count).suffix(count - names.count)
        }
        guard needed <= names.count else {
            throw .invalidSetting(name: "classes", reason: "the masks hold label \(needed - 1) but there are only \(names.count) classes; "
                + "ask for more classes or fix classes.txt")
        }
        guard !names.isEmpty else { throw .invalidSetting(name: "classes", reason: "every mask pixel is ignored (255); nothing to learn") }
        return names
    }
}
