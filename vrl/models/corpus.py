"""The text a tiny model's tokenizer is trained on, embedded so a build needs no download.

It covers the words of the toy video suite's prompts and answers, common words of video question
answering, digits, punctuation, the reasoning/answer tags and JSON punctuation, so that prompts of the toy
suite tokenize into few tokens. Changing this text changes every tiny model's hash (a new model is built).
"""

from __future__ import annotations

# Words the toy suite uses; repeated in the corpus so they become single tokens.
TOY_WORDS = """
red green blue yellow white black orange purple cyan magenta gray pink brown
square circle triangle rectangle box object shape shapes objects word letter letters
left right up down top bottom center middle moving moves moved static still
direction color colour size speed fast slow small large big tiny wide tall short long
flash flashes flashing blink blinks times count number many how what which when where who
visible appears appear disappears seconds second frame frames video image picture clip
time start end begin beginning ending interval during before after first last
yes no true false answer option options choose select letter correct
caption describe description scene background foreground plain solid pattern
track tracking position location bounding boxes pixel pixels coordinates
width height area radius diameter side length travel travels distance per
written text read shown says display displayed digit digits sum plus minus times equals
result compute calculate arithmetic expression math number numbers total
"""

# Common words of video question answering and captions, so generic prompts stay short too.
GENERIC_WORDS = """
the a an of to in on at by for with from into onto over under above below between behind front near far
and or but not because so then while until since if than as is are was were be been being has have had
do does did doing done can could will would should may might must shall this that these those there here
it its they them their he him his she her we us our you your i me my one two three four five six seven
eight nine ten eleven twelve hundred thousand zero half quarter several few more most less least each every
all both some any none other another same different next previous again also only just very too quite
person people man men woman women boy girl child children baby friend player team crowd audience teacher
student chef driver worker doctor police dancer singer speaker host guest family couple group
hand hands arm head face eye eyes hair leg foot feet body finger mouth voice smile
walk walks walking run runs running jump jumps jumping sit sits sitting stand stands standing
hold holds holding pick picks picking put puts putting open opens opening close closes closing
take takes taking give gives giving look looks looking watch watches watching talk talks talking
eat eats eating drink drinks drinking cook cooks cooking cut cuts cutting play plays playing
throw throws throwing catch catches catching kick kicks kicking push pushes pushing pull pulls pulling
turn turns turning enter enters entering leave leaves leaving wear wears wearing carry carries carrying
write writes writing draw draws drawing point points pointing wave waves waving dance dances dancing
sing sings singing drive drives driving ride rides riding fly flies flying swim swims swimming
climb climbs climbing fall falls falling throwing rolling roll rolls slide slides sliding shake
car cars bus truck bike bicycle train boat plane road street bridge building house room door window
wall floor table chair sofa bed desk kitchen bathroom office shop store market park garden yard field
beach river lake sea ocean mountain hill forest tree trees grass flower flowers sky sun moon cloud rain
snow water fire light lamp screen phone computer laptop camera book paper pen cup glass bottle plate bowl
knife spoon fork food bread fruit apple banana orange vegetable meat rice soup cake pizza coffee tea
dog dogs cat cats bird birds horse cow fish animal animals ball game sport soccer football basketball tennis
music song guitar piano drum movie show news story event scene moment action activity step steps process
morning afternoon evening night day today week year minute minutes hour hours clock
happy sad angry surprised calm excited tired busy quiet loud dark bright new old young
hot cold warm wet dry clean dirty full empty heavy light round flat sharp soft hard
inside outside across along around through toward towards away back forward upward downward
reason because why purpose cause effect happen happens happened happening change changes
first second third fourth final finally then next later earlier before after during
question questions answer answers choice choices option options reasoning think thinking reason
explain explains explained describe describes described summary summarize detail details
relation relationship order sequence temporal spatial grounding localize localization
"""

# Sentences in the style of the toy suite and of generic video question answering.
SENTENCES = """
You are a helpful assistant.
system user assistant system user assistant
What color is the square in the video?
What color is the moving object?
What shape is shown in the image?
Which direction does the object move?
In which direction does the red square move?
The object moves from left to right.
The object moves from right to left.
The object moves from top to bottom.
The object moves from bottom to top.
How many times does the square flash?
How many objects are in the image?
How many circles are there?
What is the width of the square in pixels?
How fast does the object move, in pixels per second?
When is the object visible? Give the start and end time in seconds.
Where is the object in the image? Give its bounding box.
Track the object: give its bounding box at every second.
Where is the object when it is visible? Give the time interval and the boxes.
What word is written in the video?
What word is shown in the image?
Is there a blue circle in the video? Answer yes or no.
Is the object moving? Answer yes or no.
Describe the video in one short sentence.
Describe the image in a few words.
Compute the result of the expression shown in the image.
What is the sum shown in the picture?
A red square moves to the right on a gray background.
A blue circle flashes three times on a black background.
A green triangle appears in the middle of the frame.
A yellow square is static in the top left corner.
The word is written in white on a dark background.
The answer is 7.
The result is 12.
Answer with the option's letter from the given choices directly.
Please think about this question as if you were a human pondering deeply.
Engage in an internal dialogue using expressions such as let me think, wait, hmm, oh, I see.
Output the thinking process in <think> </think> and the final answer in <answer> </answer> tags.
Please provide only the single option letter, such as A, B, C, D, within the <answer> </answer> tags.
Please provide the numerical value, e.g., 42 or 3.14, within the <answer> </answer> tags.
Please provide the time interval in seconds, e.g., {"time": [1.5, 3.0]}, within the <answer> </answer> tags.
Please provide the bounding box, e.g., {"boxes": [10, 20, 50, 60]}, within the <answer> </answer> tags.
Please provide yes or no within the <answer> </answer> tags.
Please provide your text answer within the <answer> </answer> tags.
<think>The square is red and it moves to the right.</think><answer>A</answer>
<think>I count the flashes: one, two, three.</think><answer>3</answer>
<think>The object appears at 1.0 seconds and leaves at 2.5 seconds.</think><answer>{"time": [1.0, 2.5]}</answer>
<think>The box is near the center.</think><answer>{"boxes": [12, 30, 52, 70]}</answer>
<think>Let me think. The text says 4 plus 5, so the sum is 9.</think><answer>9</answer>
<think>Wait, hmm, I see a blue circle.</think><answer>yes</answer>
<think>There is no green shape.</think><answer>no</answer>
{"time": [0.5, 2.0]} {"boxes": [[0, 0, 10, 10], [5, 5, 15, 15]]} {"time": [1.5, 3.0], "boxes": [[3, 4, 20, 21]]}
A. red B. blue C. green D. yellow
A. square B. circle C. triangle
A. left B. right C. up D. down
0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 25 30 40 50 60 64 100 128 256
0.0 0.5 1.0 1.5 2.0 2.5 3.0 3.5 4.0 29.97 30 24 25 60 fps
2 + 3 = 5. 7 - 4 = 3. 6 * 2 = 12. 9 + 8 = 17. 15 - 6 = 9. 3 x 4 = 12.
( ) [ ] { } , . : ; ! ? " ' - _ / \\ * + = < > % # @ & | ~ ` ^ $
A man is walking down the street while talking on the phone.
A woman is cooking in the kitchen and cutting vegetables on a board.
Two children are playing with a ball in the park.
A dog runs across the yard and jumps over a fence.
The person picks up the cup and drinks from it.
A car drives along the road at night with its lights on.
The camera pans from the building to the sky.
What is the person doing at the beginning of the video?
What happens after the man opens the door?
Why does the woman stop walking?
Where does the event take place?
Who is holding the bag?
What does the person do with the knife?
What is the main activity shown in the video?
How does the video end?
What is the relationship between the two people?
What object does the person put on the table?
What sport are they playing?
How many people appear in the video?
Which of the following best describes the scene?
Summarize the events of the video in order.
First, the person enters the room. Then, they sit down. Finally, they turn off the light.
The man is wearing a black jacket and a white shirt.
The weather is sunny and the street is busy with people.
A bird flies over the lake and lands on a tree.
The video shows a cooking tutorial with several steps.
The speaker explains the rules of the game to the audience.
A group of friends is sitting around a table eating dinner.
The player kicks the ball into the goal and the crowd cheers.
A cat sleeps on the sofa next to a window.
The train arrives at the station and people get off.
She opens the box and takes out a red book.
He writes on the whiteboard and points at the chart.
The boy rides a bicycle along the river.
A hand draws a circle on a sheet of paper.
The ball rolls from the left side of the table to the right side.
The light turns on and off several times.
The text on the screen reads hello world.
The clock on the wall shows three o'clock.
"""


def corpus_lines() -> list[str]:
    """Training lines: each toy word several times (so it merges into one token), then the sentences.

    Word repetition also adds capitalized and space-prefixed forms, which the byte-level pre-tokenizer
    treats as different pieces.
    """
    lines = []
    for words, repeat in ((TOY_WORDS.split(), 8), (GENERIC_WORDS.split(), 4)):
        for _ in range(repeat):
            lines.append(" ".join(words))
            lines.append(" ".join(w.capitalize() for w in words))
    lines.extend(line for line in SENTENCES.strip().splitlines() for _ in range(3))
    return lines
