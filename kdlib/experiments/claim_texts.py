"""What each claim says, the paper's evidence for it and the scale it spans, and the history of
its rule: the text :mod:`kdlib.experiments.verdicts` stamps on every claim it decides.

Kept apart from the rules so that a note on a rule's history, or a claim's wording, is
edited without touching the logic that decides it (and a diff shows which of the two moved).
A rule changed after results existed says so here: :data:`RULE_NOTE` for the changes every
claim of C1-C13 lived through, :data:`RULE_CHANGES` for one claim's own.
"""

from __future__ import annotations

from kdlib.claims import ALTERNATIVES
from kdlib.seed_noise import MIN_POOLED_DOF

# Every claim the chapters test: id -> (the paper's claim, the paper's evidence, chapter).
# The verdict functions below give these statements their measured evidence.
STATEMENTS: dict[str, tuple[str, str, str]] = {
    "C1": (
        'Consistent teaching (same crops, or function matching) beats a fixed teacher and '
        'independent views when training long enough.',
        'Figure 3 / 9-12: same/ic, same/rc and mix end highest on all four datasets.',
        "01_consistency"),
    "C2": (
        'Fixed-teacher policies fit the training objective better but generalize worse (they '
        'overfit).',
        'Figure 3, section 3.1.1: fix/* reach the lowest distillation loss, while "function '
        'matching never reaches such loss on the training set while generalizing much '
        'better".',
        "01_consistency"),
    "C3": (
        'Function matching needs patience: at short schedules it is not the best policy, at long '
        'ones it is.',
        'Appendix C (Figures 9-12): "(relatively) short runs may provide deceptive signal on '
        "the best method\", and only with patience does function matching become the best "
        'choice; section 3.2 (ImageNet): it "performs slightly worse with short schedules".',
        "01_consistency"),
    "C4": (
        'With function matching, accuracy keeps improving with longer schedules, without '
        "overfitting, and approaches the teacher's.",
        'Figure 4 / Table 4: flowers102 77.5% (1k epochs) -> 96.9% (1M epochs), teacher 97.82%.',
        "02_patience"),
    "C5": (
        'The distilled student, at every schedule the paper shows, beats the best model of '
        'the same architecture trained from scratch, and at long schedules the best '
        'transfer-learned one.',
        'Section 3.1.2, Table 4: from-scratch "substantially outperformed" by the student at '
        'every length shown (100-1,000,000 epochs); transfer "eventually also outperformed" '
        '(not on flowers102: transfer 97.50% vs student 96.93%).',
        "02_patience"),
    "C6": (
        'On the largest dataset, a fixed teacher saturates with longer schedules, while '
        'consistent teaching and function matching keep improving; function matching trails at '
        'short schedules and leads at long ones.',
        'Table 3: fixed teacher 78.11% (1200 ep) -> 76.95% (9600); consistent 81.76%, FunMatch '
        '82.31% at 9600 (73.89% vs 74.95% at 30).',
        "03_imagenet"),
    "C7": (
        'Training from labels alone overfits at long schedules and stays below distillation.',
        'Figure 7 / Table 3: best from labels 78.15% (1200 ep), 76.59% at 4800; FunMatch 82.31%.',
        "03_imagenet"),
    "C8": (
        'Consistent views work across resolutions: a student at a lower resolution than its '
        'teacher stays close to the full-resolution one at a fraction of the cost, and a higher-'
        'resolution teacher gives a modest gain at every schedule.',
        'Table 1: T224->S160 80.49% vs T224->S224 82.31% at 9600 epochs (a 2x faster student); '
        'T384->S224 above T224->S224 at 300-9600 epochs (+0.15 to +0.33 pts).',
        "04_resolution"),
    "C9": (
        "A second-order preconditioner (Shampoo) reaches Adam's accuracy with a several-times "
        'shorter schedule, at minimal step-time overhead.',
        'Figure 5 (middle): Shampoo at 1200 epochs matches Adam at 4800, and improves on Adam in '
        'all settings.',
        "05_shampoo"),
    "C10": (
        'A pretrained student initialization improves short distillation runs, but its advantage '
        'vanishes with long schedules, and it eventually falls behind.',
        'Section 3.5, Figure 5 (right) / Table 3: BiT-M init 77.52% vs 73.89% at 30 epochs; '
        'random 81.54% vs BiT-M init 81.11% at 1200, 82.18% vs 81.45% at 4800 ("slightly '
        'overtakes").',
        "06_init"),
    "C11": (
        'Function matching works across model families (a MobileNetV3 student of a BiT teacher; '
        'Table 3 puts GroupNorm above BatchNorm, the variant section 3.6 opts for), and an '
        'ensemble teacher gives a better student at every schedule.',
        'Table 3: MobileNet v3 (GN) 74.60% -> 76.31% (300 -> 1200 ep), (BN) 72.32% -> 73.51%; '
        'ensemble teacher T384+224 82.12% vs 81.54% at 1200 ep.',
        "07_cross_family"),
    "C12": (
        'Distillation works on images of another domain: in-domain images are best, related '
        'images come close (given longer schedules), unrelated images still teach well above '
        'chance.',
        'Figure 6: pets from food101 images roughly 30%; pets / sun397 from ImageNet close to in-'
        'domain with long schedules.',
        "08_out_of_domain"),
    "C13": (
        '(DIST, Huang et al. 2022) A correlation-based loss (DIST) distills a stronger teacher '
        'better than KL, and gains more with the strongest teacher than with the weakest.',
        'DIST slides, Table 3: ResNet-18 from ResNet-34 / -152: KD 71.21% / 71.12%, DIST 72.07% /'
        ' 72.24% (+0.86 / +1.12 pts; +0.77 and +0.99 from ResNet-50 and -101, so not monotone);'
        ' ResNet-34 from ResNet-50 / -101 / -152: +0.33 / +0.47 / +0.55 pts.',
        "09_dist"),
}


# What the paper's evidence for each claim spans: our scale is reported against it.
PAPER_SCALE: dict[str, str] = {
    "C1": "flowers102 (1,020 images) at 1,000-100,000 epochs, pets at 1,000-30,000, food101 "
          "and sun397 at 100-3,000 (Fig. 9-12)",
    "C2": "flowers102 at 10,000 epochs (Figure 3)",
    "C3": "flowers102 at 1,000-100,000 epochs, pets at 1,000-30,000, food101 and sun397 at "
          "100-3,000 (Fig. 9-12)",
    "C4": "1,000 to 1,000,000 epochs (flowers102); 300-30,000 (pets); 100-3,000 (food101, "
          "sun397)",
    "C5": "100 to 1,000,000 epochs on four datasets (Figure 4, Table 4)",
    "C6": "ImageNet (1.28M images) at 30-9,600 epochs",
    "C7": "ImageNet at 90-4,800 epochs from labels",
    "C8": "ImageNet at 30-9,600 epochs; teachers at 224 and 384 px",
    "C9": "ImageNet at 30-4,800 epochs (Shampoo 30-1,200; its match: 1,200 vs Adam's 4,800)",
    "C10": "ImageNet at 30-4,800 epochs, BiT-M init",
    "C11": "ImageNet at 300-9,600 epochs",
    "C12": "pets at 100-1,000 and sun397 at 30-300 epochs from other datasets (Figure 6, "
           "its lengths read from the figure: out_of_domain.PAPER_TARGETS)",
    "C13": "ImageNet at 100-450 epochs (DIST, Huang et al.)",
}


# The claims whose rules lived through the changes RULE_NOTE lists (every claim up to
# 2026-12-05); a claim added later is written under today's rules and carries only its own
# RULE_CHANGES.
RULE_NOTE_CLAIMS = frozenset(f"C{i}" for i in range(1, 14))
RULE_NOTE = ("rule rewritten on 2026-12-03 (issue 13, noise-aware sub-checks on the new "
             "verdict scale) after the cpu results existed; later that day, also after "
             "results, pooled seed noise needs 10 degrees of freedom before it may narrow "
             "the assumed 1.0 pt; on 2026-12-04, also after results, a point's own spread "
             "from 3 seeds counts only where it exceeds the pooled one, and seed noise is "
             "pooled per training-set size (when it changed, 250 images spread 1.9 pts per "
             "run, 1000 images 0.4, and one pool over both 1.5); late on 2026-12-04, also "
             "after results, within a training-set size seed noise is pooled per schedule "
             "length where that length has 10 degrees of freedom or spreads more (1000 "
             "images then spread 1.6 pts per run at 100 epochs, 0.4 at 300 and at 1000, "
             "0.88 over all three): each sub-check also records its outcome under the "
             "per-size pool, and the summary lists those that differ; on 2026-12-05, also "
             "after results (a review of the rules against the paper), the best arm of a "
             "family is picked on validation accuracy, not mean test accuracy, and a check "
             "that reads a point selected at a grid edge the ladder goes beyond makes its "
             "verdict provisional; in the session after 2026-12-05, after results (chapter "
             "08's first replicates), runs trained on other images than the evaluation "
             "dataset's (related, unrelated and noise images) pool their seed noise apart "
             "from the in-domain runs: digits students spread 6.8 pts per run at 300 epochs "
             "and had widened the 1000-image, 300-epoch pool from 0.7 to 1.7 pts, turning "
             "four checks of C1, C2, C4 and C8 inconclusive; in the session after that, "
             "after results (a review of the rules against their code; no stored verdict "
             "moved), 'not reproduced' needs every sub-check to fail, mirroring "
             "'reproduced' (it had needed one fail and no hold, so one fail beside "
             "inconclusive checks read 'not reproduced' where one hold read 'inconclusive'), "
             "and a point of 2 seeds counts its own spread where it exceeds the pooled one "
             "(it had read the pool alone); in the same session, where a probe one step "
             "past the lr ladder's end led on validation (2 of the 29 probes then: chapter "
             "01's fix/rs at 30 epochs on 1k images and at 400 on 250), that comparison's "
             "ladder goes to lr 0.3 for every policy alike (grids.LADDER_BEYOND), which the "
             "queue grows; in the session "
             "after that, after results (250 images at 4000 epochs, 3 seeds) and before those "
             "of 1000 images at 3000 epochs, a schedule length without a pool of its own "
             "reads the nearest shorter length of its size that has one, not its size's "
             "(seed noise falls with length: 1000 images spread 4.45, 1.34, 0.68 and 0.40 "
             "pts per run at 30, 100, 300 and 1000 epochs, and the size's pool, 2.75, is "
             "the short lengths'; 250 images at 4000 epochs read 1.96 against its own "
             "seeds' 0.20): on the store it was decided on no outcome moved (2 SE of C4's "
             "250-image 4000 vs 1000 epochs went from ±2.8 to ±2.6 pts, of its 4k 30 vs 3 "
             "epochs from ±11.3 to ±12.1, of C12's in-domain vs related from ±3.1 to ±3.3), "
             "and then C4's follow-up seeds gave 250 images at 1000 epochs a pool of its own "
             "(0.74 pts then, 10 degrees of freedom; replicates stored since widened it), which "
             "the 4000-epoch point reads, and "
             "'250: 4000 beats 1000 epochs' held (+2.1 pts ±1.0) while the 4000-epoch point "
             "had 3 seeds, where the per-size pool (1.89, the earlier rule's for that point) "
             "read it inconclusive, and with the follow-up's 8 seeds at both lengths it holds "
             "under every reading the summary's sensitivity table lists (+2.1 pts, ±0.7 at 2 SE "
             "on that day's pool)")
# Chapter 01's rules for lengths only some policies reach (C1-C3), written before any was read.
LONGER_01 = ("; on 2026-12-06, before chapter 01 read any of its 1000-epoch runs (issue 14's "
             "longer schedules, which train only function matching and the best consistent, "
             "fixed and independent policies on validation at the longest length all eight "
             "share: same/ic, fix/cc, ind/rc)")
# Changes of one claim's rule, after results, appended to its RULE_NOTE.
RULE_CHANGES: dict[str, str] = {
    "C3": ("; in the session after 2026-12-05, after results (a review of the rules against "
           "their code), 'mix leads every other policy' compares mix with each other policy "
           "(it held only if ahead of every one, fails if behind any), not only with the one "
           "best on validation, which could miss an arm ahead on test"
           + LONGER_01 + ", 'mix leads every other policy' at the longest length compares "
           "mix with each policy trained there, and names the ones left out; on 2026-12-06, "
           "when 1000 epochs on 1k images was first read, the points deciding 'mix leads every "
           "other policy' there (mix and same/ic: +0.3 pts, ±0.6 at 2 SE, about 9 seeds per "
           "point to be decided) were planned to 8 seeds under the criterion of C1, C5, C10 "
           "and C11's follow-ups, fixed before any new seed was trained"),
    "C1": ("; late on 2026-12-05, after results, the points its 250-image checks read "
           "(same/ic, fix/cc and ind/rc at 400 epochs) were planned to 8 seeds, a number "
           "fixed before any new seed was trained (a seed follow-up in the queue for every "
           "inconclusive check that needed at most 12 seeds per point to be decided, were its "
           "difference what it read at 3: these needed 4 and 7), and the checks read every "
           "one stored, and the summary's sensitivity table also reads them from the 5 new "
           "seeds alone, a reading added before any was trained" + LONGER_01
           + ", each family is read over its policies trained at a regime's longest length, "
           "and the claim names the ones left out"),
    "C2": ("; on 2026-12-05 C2 compares the fixed-teacher policies with function matching, "
           "as section 3.1.1 does, not with the best consistent policy; in the session after "
           "that, after results, its training-loss checks read the seed noise of KL losses at "
           "T=1 only, the objective they compare (the pool had mixed cross-entropy, DIST and "
           "T=10 losses, on other scales: 0.011 per run at 1000 images and 300 epochs, 0.006 "
           "without them; no outcome moved)" + LONGER_01
           + ", each fixed policy is read at its own longest length beside function matching "
           "at that length, and a check read short of function matching's longest names its "
           "length"),
    "C5": ("; on 2026-12-05 C5's range starts at Figure 4's shortest schedule (100 epochs, "
           "food101 and sun397; flowers102 starts at 1,000), not ImageNet's 30: the 30- and "
           "40-epoch comparisons (1k and 250 images: the student trailed scratch, 2 fails; 4k "
           "images at 30 epochs: 2 inconclusive) are reported, no longer checked; late that "
           "day, after results, the points of '1k: student > scratch at 100 epochs' (it needed "
           "about 6 seeds per point to be decided) were planned to 8 seeds, fixed before any "
           "new seed was trained, and the check reads every one stored (and, in the summary's "
           "sensitivity table, the 5 new seeds alone); in the next session, after results (a "
           "reader's audit), each student length is compared with the best from-scratch run "
           "and the longest with the best transfer run (each baseline's best length on "
           "validation), as Table 4 and Figure 4 set every student length against one tuned "
           "baseline: before, it had compared the baselines at the student's own length, a weaker "
           "bar, which the student now passes at 100 epochs on 1k images (80.0±1.0% against "
           "scratch's 77.5±1.5% at 100, 8 seeds each: +2.5 pts ±1.4 at 2 SE, within the noise "
           "at the 3 seeds each had when the rule changed) while it is behind the best scratch "
           "run, 83.1% at 1000 epochs"),
    "C9": ("; on 2026-12-05 C9's match reads one pair fixed in advance (Shampoo's longest "
           "length with an Adam length 3x longer, and the shortest such), not the best of "
           "every pair, and its tolerance for 'matches' grew from 0.5 to 0.6 pts, just above the "
           "gap behind the paper's own match (0.51 pts, Table 3's function-matching rows as "
           "we read them: Shampoo at 1200 epochs 81.67% vs Adam at 4800 82.18%), and chapter "
           "05 shows Adam "
           "at 1000 epochs (function matching at 1000 epochs, the point chapter 02 grew and "
           "replicated), so "
           "the match is read at 3.3x (300 vs 1000 epochs); in the session after "
           "2026-12-05's, after results, the ladder probes reached Shampoo's points (they had "
           "probed Adam's only): lr 0.3 led on validation at 300 epochs (86.35 vs 86.15%), "
           "so chapter 05's 300-epoch ladder goes to lr 0.3 for both optimizers, as the "
           "probe rule reads any lead"),
    "C4": ("; late on 2026-12-05 C4's 'no overfitting' holds only where every step to a "
           "longer schedule is shown to lose at most 1 pt (beyond 2 SE) and is inconclusive "
           "where a step is within the noise: before, it held whenever no step was clearly worse, "
           "so steps within the noise read as evidence (a statistical review; every stored "
           "step was a clear gain, so no outcome moved); in the session after that, after "
           "results, the points of '250: 4000 beats 1000 epochs' (function matching at 1000 "
           "and 4000 epochs on 250 images; it needed about 7 seeds per point to be decided, "
           "leaning holds) were planned to 8 seeds under the criterion of C1, C5, C10 and "
           "C11's follow-ups, fixed before any new seed was trained, and the check reads every "
           "one stored (and, in the summary's sensitivity table, the 5 new seeds alone); on "
           "2026-12-06, after results (1000 images at 3000 epochs, 3 seeds), the points of "
           "'1k: 3000 beats 1000 epochs' (+0.4 pts, ±0.7 at 2 SE then; about 8 seeds per point to "
           "be decided, leaning holds) were planned to 8 seeds under the same criterion, "
           "fixed before any new seed was trained, and queued after the lengths issue 14 asks "
           "for: C4 stays not testable whatever they read, while its 250- and 4k-image "
           "'within 2 pts of the teacher' checks are; in the next session (also 2026-12-06) "
           "that follow-up was cut for the budget before any of its new seeds trained "
           "(issues 13 and 14 asked for about 30 h; 62 h were spent and about 38 h were "
           "still planned): the check reads the 3 seeds per point stored"),
    "C8": ("; on 2026-12-05 C8 gained a check of 'at a fraction of the cost': the low-res "
           "student's forward FLOPs at most 0.6x the baseline's; late that day its 'stays "
           "close' allows 2 pts, the paper's own drop (1.82 pts, Table 1) rounded up as C9's "
           "match is, not an unexplained 3 (the check then held, +0.7 pts ±2.1); in the "
           "session after that (after results; no outcome moved) its seeds per point count "
           "only the points its checks read: while the high-res teacher is the weaker one "
           "its check is not testable, and the 30- and 100-epoch single seeds no check read "
           "had marked the verdict provisional, waiting on replicates no plan trains"),
    "C11": ("; on 2026-12-05 C11's MobileNet check reads the last step to the longest "
            "length (the paper's 300 -> 1200 epochs), not the whole range from the shortest, "
            "and C11 gained a check against the same MobileNet trained from labels; in the "
            "next session, after results, the points of that check (distilled and from "
            "labels at 100 epochs; it needed about 12 seeds per point to be decided, leaning "
            "fails) were planned to 8 seeds under the criterion C1, C5 and C10's follow-ups "
            "met (it had been left out for its cost, and following up only the checks that "
            "leaned the paper's way would bias the tally towards it), fixed before any new "
            "seed was trained, and the check reads every one stored (and, in the summary's "
            "sensitivity table, the 5 new seeds alone); on 2026-12-07, when chapter 07's "
            "300-epoch points were first read (3 seeds), the points of that check at 300 "
            "epochs (+1.6 pts, ±2.1 at 2 SE; about 6 seeds per point to be decided, leaning "
            "holds) were planned to 8 seeds under the same criterion, fixed before any new "
            "seed was trained"),
    "C10": ("; on 2026-12-05 C10 gained a check for section 3.5's title, 'eventually falls "
            "behind': the random init ahead at the longest length; late that day, after "
            "results, the 30-epoch points (the head start, which needed about 10 seeds per "
            "point to be decided) were planned to 8 seeds, fixed before any new seed was "
            "trained, and the check reads every one stored (and, in the summary's sensitivity "
            "table, the 5 new seeds alone)"),
    "C7": ("; in the session after 2026-12-05's, after results (a reader's audit), "
           "'distillation > labels' compares function matching, the recipe Figure 7 and "
           "Table 3 set label-only training against, with the best label-only arm: before, it "
           "compared the best distillation arm, which at cpu is the fixed teacher the paper "
           "argues against: the check went from holds (+8.9 pts ±3.3, n=1) to inconclusive "
           "(+2.9 pts ±3.3, n=1, as it then read), and the verdict stays not testable at "
           "this scale (the "
           "overfitting check is not testable at 4 epochs); on 2026-12-06, before the book "
           "showed any 16-epoch run (a dry run of the chapter on the stored seed-0 runs "
           "crashed), 'the best label-only arm' at the longest length is the best of those "
           "trained there: 16 epochs trains only labels: Adam (the best on validation at 1, 2 "
           "and 4 epochs), and the rule, which assumed every label-only arm at every length, "
           "could not read that length"),
    "C6": ("; on 2026-12-05 C6's short-schedule check compares function matching with "
           "consistent teaching, as section 3.2 does: before, it compared it with the fixed "
           "teacher, which FunMatch already leads at the paper's 30 epochs (73.89 vs 73.75%); "
           "in the next session (a review of the rules against their code) 'FM leads' compares "
           "function matching with each of the fixed teacher and consistent teaching, not "
           "only the one best on validation (not testable at our lengths either way); in the "
           "session after that (after results; no outcome moved) its seeds per point count "
           "only the points its checks read: the longest length's only where the lead is "
           "decided there (from 30 epochs), so the 2- and 4-epoch single seeds no check read "
           "no longer mark the verdict provisional"),
    "C13": ("; late on 2026-12-05 (after results; the rule itself is unchanged) the KL arm "
            "reads chapter 01's runs of its configs: 9 of chapter 09's runs were copies of "
            "chapter 01's configs, trained again in another group, and its lr 0.03 copy read "
            "0.9 pts lower, so chapter 09 selected lr 0.01 (84.1%, where chapter 01 reads "
            "85.5% for the same point), and one config is now one run for every chapter "
            "(kdlib.store.fresh_run), and 'DIST > KL at 300 epochs' went from holds (+1.6 pts "
            "±1.2) to inconclusive (+0.2 pts ±1.2, as it then read); in the next session, "
            "after results (a reader's audit), 'DIST gains more with the strong teacher' is "
            "not testable while the weak teacher is below its own KL student (outside DIST's "
            "study, whose teachers are all stronger than their students, as C8 reads its "
            "high-res check): it had read inconclusive (-0.6 pts, about 25 seeds per point "
            "to decide, while what would settle it also named the missing teacher), so the "
            "verdict went from inconclusive to not testable (a check not testable, none "
            "decided: evidence.combine)"),
}


def rules_intro() -> str:
    """How every chapter's claims are decided, as the paragraph that opens its Claims section:
    one text for every chapter, with the numbers its rules use read from the code (it was
    typed into each notebook and had drifted: "3 or more seeds" after the code read 2)."""
    readings = ", ".join(ALTERNATIVES.values())
    return (
        "Each claim of the paper this chapter tests, split into sub-checks, each decided on "
        "means over seeds: a difference counts only beyond 2 standard errors, else the "
        "sub-check is *inconclusive*; a sub-check the paper saw only beyond our longest "
        "schedule, or whose premise our set-up lacks (a teacher stronger than its student), "
        "is *not testable at this scale*. The verdict: *reproduced* (every sub-check holds), "
        "*partly* (some hold, some fail), *not reproduced* (every sub-check fails), else "
        "*inconclusive* or *not testable at this scale*. An outcome marked \"... under N of M "
        "other readings\" would change under that many of the alternative readings the "
        f"summary's sensitivity table lists ({readings}; the last only where a seed "
        "follow-up grew the points): a decision resting on the rule's choices more than on "
        "the runs. The rules live in `kdlib.experiments.verdicts` and are tested on "
        "synthetic tables; they were rewritten on 2026-12-03 (issue 13) after these results "
        "existed, and each claim says so.\n\n"
        "A point's noise is the seed spread pooled over the replicated runs stored with its "
        "training-set size and schedule length where that pool has "
        f"{MIN_POOLED_DOF} degrees of freedom or a larger spread than it would read otherwise, "
        "else the nearest "
        "shorter length's of its size that has such a pool (since the session after "
        "2026-12-05's, after results: seed noise falls with schedule length), else its "
        "size's (per size since 2026-12-04, after results, when 250 images spread 1.9 pts per "
        "run, 1000 images 0.4 and one pool over both 1.5; per length within a size since late "
        "that day, when 1000 images spread 1.6 pts at 100 epochs and 0.4 at 300 and 1000; the "
        "summary lists the outcomes this choice decides), else the spread over every "
        "replicated run (or an assumed 1 point per run when none is), as each sub-check "
        "names; a point with 2 or more seeds uses its own spread where that is larger (only "
        "where larger since 2026-12-04, after results: 3 seeds once read ±0.04; from 2 seeds, "
        "not 3, since the session after 2026-12-05's). Since 2026-12-05, also after "
        "results (a review of the "
        "rules against the paper): the best arm of a family is picked on validation, not "
        "test, and a verdict that reads a point selected at a grid edge the ladder goes "
        "beyond is provisional (a point at the ladder's end is named in what would settle "
        "it); a claim whose own rule changed says how in its note."
    )
