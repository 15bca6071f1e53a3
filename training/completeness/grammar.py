"""Synthetic training data for the end-of-turn classifier.

A small template grammar of voice-assistant / customer-service utterances.
Every complete utterance is emitted with label 1 and each of its proper word
prefixes with label 0 -- except prefixes that are themselves complete:

  * inside one template: optional parts are marked with [ ... ], so in
    "set a timer [for {DUR}]" the prefix "set a timer" is complete while
    "set a timer for" / "set a timer for ten" are not;
  * slots (digit strings, numbers, times, dates, money) report where they may
    stop: a phone number only after 10 digits, an order number after >=3, a
    PIN after 4, "nineteen eighty" is a year but "nineteen" is not, ...;
  * across templates: after generation, any prefix whose normalised word
    sequence was produced as a complete utterance anywhere is relabelled 1
    ("yes" in "yes I want to cancel").

Template syntax:  word | {RULE} | {@slot:args} | [optional] | (alt1 | alt2)

Deterministic for a given --seed.  Usage:
    python gen_data.py --n 60000 --seed 1 --out data/train.tsv
"""
from __future__ import annotations

import argparse
import random
import re
from functools import cache

from alice_voice.speech.completeness import normalize

P_OPT = 0.5          # probability that an optional [...] part is included
P_NUMERALS = 0.45    # probability that an utterance is rendered with Whisper-style numerals

# ------------------------------------------------------------------ grammar
R: dict[str, list] = {}


def rule(name, *alts):
    """alts: 'text' or (weight, 'text'). A single string with ' | ' at top level is split."""
    out = []
    for a in alts:
        if isinstance(a, tuple):
            out.append(a)
        else:
            out.append((1.0, a))
    R.setdefault(name, []).extend(out)


def words(name, s):
    """vocabulary list separated by '|'"""
    rule(name, *[x.strip() for x in s.split("|") if x.strip()])


# ---- top level
rule("UTT",
     (7, "{Q}"), (9, "{CMD}"), (6, "{STMT}"), (5, "{INFO}"), (6, "{ANS}"), (2.5, "{GREET}"),
     (1.2, "{LEAD} {Q}"), (1.2, "{LEAD} {CMD}"), (1.2, "{LEAD} {STMT}"), (0.8, "{LEAD} {INFO}"),
     (0.6, "{LEAD} {ANS}"),
     (0.8, "{GLEAD} {CMD}"), (0.8, "{GLEAD} {STMT}"), (0.8, "{GLEAD} {Q}"), (0.3, "{GLEAD} {INFO}"),
     (1.2, "{THINK} {CLAUSE}"), (0.6, "let me (see | think | check) {ANS}"),
     (0.6, "let me (see | check) {INFO}"), (0.3, "let me see [um] {CLAUSE}"),
     (0.4, "{ANS} {CONTINUATION}"),
     )
words("LEAD", "um | uh | so | um so | uh so | okay so | ok so | well | yeah so | oh | hmm | actually | "
              "ok um | and | and um | also | but | so um | well um | right so | i mean | you know | like | "
              "uh yeah | so basically | basically | okay um | alright so | um actually | and also | oh and | "
              "sorry | sorry um | one more thing")
words("GLEAD", "hi | hello | hey | hi there | yes | yeah | no | okay | sure | thanks | yes please | "
               "good morning | good afternoon | oh okay | alright | yes hi | hello yes | no thanks | right | "
               "perfect | great | thank you | yeah hi")
words("THINK", "i think | i guess | i believe | i'm pretty sure | i suppose | maybe | probably | i think that")
rule("CONTINUATION", "and {CLAUSE}", "but {CLAUSE}", "and also {CMDV}", "and {INFO}", "so {CLAUSE}",
     "because {CLAUSE}")
rule("CLAUSE", (2, "so"), "it's {ADJ}", "that's (right | correct | everything | it | all | fine)",
     "it was (yesterday | last week | on {DAY} | last {DAY} | two days ago | this morning)",
     "the order number is {@d:order}", "it's {@d:order}", "my card (expired | was stolen | got declined)",
     "i need a new one", "there's a problem with my {THING}", "i was charged twice",
     "it's (on | in) the {ROOMWORD}", "i already paid", "{STMTCORE}", "it was about {@money}",
     "i'm going to be late", "we should leave at {TIME}", "it's for {PARTY}", "it's {@num:1:99}",
     "that's the one", "i don't have it with me", "it's under my (name | wife's name | husband's name)",
     "i want to {VP}", "i need to {VP}")
words("ADJ", "broken | fine | okay | not working | too expensive | too late | the wrong size | perfect | too loud | "
             "damaged | missing | late | wrong | right | better | done | ready | gone | closed | open")

# ---- questions
rule("Q",
     "what time is it [(in {CITY} | right now | now)]",
     "what time (is it | it is) [(in {CITY} | right now)]",
     "(what's | what is) the weather [like] [(today | tomorrow | this weekend | in {CITY} | on {DAY} | tonight)]",
     "how's the weather [(today | in {CITY} | outside)]",
     "(what's | what is) the (date | time) [(today | right now)]",
     "what day is it [today]",
     "is it going to (rain | snow | be sunny | be hot | be cold) [(today | tomorrow | this afternoon | on {DAY} | in {CITY})]",
     "will it rain [(today | tomorrow | this weekend | on {DAY})]",
     "how long (will it | does it) take to get to {PLACE} [from here]",
     "how far (is | away is) {PLACE} [from here]",
     "where is my (order | package | delivery | refund) [{@d:order}]",
     "where's my (order | package | delivery | refund) [{@d:order}]",
     "where is order {@d:order}",
     "(what's | what is) the status of (my order | order {@d:order} | my refund | my claim | my application | my repair)",
     "when will my (order | package | refund) (arrive | get here | be ready)",
     "has my (order | package | payment) (shipped | arrived | gone through)",
     "(what's | what is) my (balance | account balance | current balance | credit limit)",
     "(what's | what is) the balance on my (account | card)",
     "how much (do i owe | is my bill | is shipping | is the {FOOD} | does it cost [to {VP}] | is a {THINGSHORT})",
     "(what's | what is) {@num:1:100} (plus | minus | times | divided by) {@num:1:100}",
     "how many (ounces | cups | grams | feet | inches | minutes | days) (in | are in) a (cup | pound | gallon | mile | yard | hour | week | year)",
     "who (won the game [last night] | is the president [of {COUNTRY}] | sings this song | wrote {BOOK} | is calling)",
     "when does the {STORE} (open | close) [(today | tomorrow | on {DAY})]",
     "(is | are) the {STORE} open [(today | tomorrow | on {DAY} | until {TIME} | right now | late)]",
     "what time does the {STORE} (open | close) [(today | tomorrow | on {DAY})]",
     "do you have any (tables | rooms | appointments | openings) (available | left | open) [(at {TIME} | on {DAY} | tonight | tomorrow | this week)]",
     "can i (pay with (a credit card | cash | apple pay) | change my (delivery address | password | order | appointment) | get a refund | speak to (a manager | someone | a person) | cancel my (order | subscription | appointment) | book an appointment [for {WHEN}])",
     "could you (repeat that | say that again | speak slower | speak up | help me [with {THING}] | check (my order | that) [for me])",
     "can you (hear me | help me [with {THING}] | repeat that | do that | check [on] (my order | order {@d:order} | my balance))",
     "how do i (reset my password | cancel my subscription | get to {PLACE} | update my address | make a payment | contact support | change my plan)",
     "(what's | what is) the capital of {COUNTRY}",
     "are you (a robot | a real person | still there | there | open [(today | tomorrow | on {DAY})])",
     "(what's | what is) on my (calendar | schedule) [(today | tomorrow | for {DAY} | this week)]",
     "is there (a fee [for that] | a gas station [nearby] | parking [(nearby | there)] | a charge [for that] | anything else)",
     "(what's | what is) the tracking number [for (order {@d:order} | my order)]",
     "is flight {@d:flight} (on time | delayed | boarding | cancelled)",
     "(what's | what is) (my | the) (order | confirmation | tracking | account) number",
     "what did you (say | just say)", "sorry what did you say", "(what's | what is) {THING2}",
     "who is {PERSON}", "how old is {PERSON}", "(what's | what is) the score [of the game]",
     "why (was i charged twice | is my bill so high | did my payment fail | is it taking so long)",
     "why (is | isn't) my {THING} (not working | working | so slow)",
     "is (it | that) (free | included | possible | okay | ready | available) [(today | now | tomorrow)]",
     "does it (come with {THINGSHORT} | work) ",
     "(what's | what is) the (best | fastest | cheapest) way to get to {PLACE}",
     "how (much | long) (longer | time is left) [on the timer]",
     "(do you | does it | did they | did it | do they) (have {THINGSHORT} | know | work | arrive)",
     "can you tell me (my balance | the time | a joke | the weather | what time it is | where my order is | how to get to {PLACE} | the status of my order)",
     "what (are | were) your (hours | opening hours) [(today | on {DAY})]",
     "how much is {@num:1:500} (dollars | euros | pounds) in (dollars | euros | pounds | yen)",
     "what's the weather going to be like [(tomorrow | on {DAY} | this weekend)]",
     "(which | what) one (is better | do you recommend | is cheaper)",
     "is room {@d:flight} (ready | available)",
     "how many (people | items | orders) (are | were) (there | in my cart | on my account)",
     "did you get (that | my message | my payment)",
     "what about {DAY}", "what about at {TIME}", "how about {WHEN}",
     "is it (open | closed | raining | far | safe | free | cold | hot | worth it | done | working | expensive | on sale | in stock | here | there)",
     "how much (is it | is that | does it cost | do you charge | are they | will it be)",
     "(is | are) (this | that | it | they | there) (okay | right | correct | available | enough | possible)",
     "do you (deliver | take (cards | cash | reservations) | have (parking | wifi | {THINGSHORT}) | know (the address | the answer | why))",
     "what (should | can) i do [(now | next)]", "what's (next | wrong | happening | going on)",
     "what (else | exactly) can you do", "what (can | do | will) you do [(for me | here | exactly)]",
     "(where | when | how) (do | should | can) i (go | park | sign | wait | start | pay | sit)",
     "(how | why) (does | did) (it | this | that) (work | happen)", "what does (that | it | this) mean",
     "(is | are) (the | your) {STORE} open on {DAYS}", "(do | does) (you | it | the {STORE}) open on {DAYS}",
     "is (table | room | seat | gate) [number] {@num:1:99} (free | available | taken | ready | open)",
     "(where | when) (is | was) (it | that | the meeting | my appointment)",
     )

# ---- commands
rule("CMD", (10, "{CMDV} [(please | for me | thanks | right now | now)]"),
     (3, "(can | could | would | will) you [please] {CMDV} [(please | for me)]"),
     (1.5, "please {CMDV}"),
     (1.5, "(i want | i need | i would like | i'd like) you to {CMDV}"),
     (1, "(i'd like to | i want to | let's) {CMDV}"),
     (1, "{CMDV} and {CMDV}"),
     )
rule("CMDV",
     # timers / alarms
     "set a timer [for {DUR}]", "set a {DURSHORT} timer", "start a timer [for {DUR}]",
     "(cancel | stop | pause) the timer", "set an alarm [for {TIME} [{WHENSHORT}]]",
     "wake me up (at {TIME} | in {DUR}) [(tomorrow | tomorrow morning)]", "turn off the alarm", "snooze [the alarm]",
     # reminders
     (3, "remind me to {TASK} [{WHEN}]"), "remind me ({WHEN}) to {TASK}",
     "set a reminder [(to {TASK} | for {WHEN})]", "add a reminder to {TASK} [{WHEN}]",
     "remind me about (the meeting | my appointment | the dentist) [{WHEN}]",
     # music / media
     (3, "play {MUSIC} [on {SPEAKER}]"), "play something by {ARTIST}", "play the (latest | new) album by {ARTIST}",
     "play [the] (next | previous | last) (song | episode | track)", "pause [the (music | song | video)]",
     "stop [the (music | song | video)]", "resume [the music]", "skip [this (song | one | track)]",
     "turn (up | down) the (volume | music | heat | tv)", "turn it (up | down | off | on)",
     "volume (up | down)", "shuffle my playlist", "next song", "louder", "mute [the tv]", "unmute",
     "play {SONG} by {ARTIST}", "play {SONG}", "repeat this song",
     # calls / messages
     (3, "call {NAME} [(on (his | her) cell | at (home | work) | back)]"), "call {@d:phone}",
     "dial {@d:phone}", (2, "text {NAME} [(that | saying) {MSG}]"),
     (2, "send a (message | text) to {NAME} [saying {MSG}]"),
     "send {NAME} a (message | text) [saying {MSG}]", "read my (messages | texts | emails | new messages)",
     "reply to {NAME} [saying {MSG}]", "tell {NAME} (that {MSG} | {MSG})", "email {NAME} [about {TOPIC}]",
     "call me back [(at {@d:phone} | later | tomorrow)]",
     "(call | text | ring) me [back] (at {@hourw} | at {TIME} | later | tonight | tomorrow | in {DUR})",
     # smart home
     (3, "turn (on | off) {DEVICE} [in the {ROOMWORD}]"), "turn {DEVICE} (on | off)",
     "switch (on | off) {DEVICE}", "dim the lights [to {@num:10:90} percent]",
     "set the (thermostat | temperature | heat | ac) to {@num:60:80} [degrees]",
     "make it (warmer | cooler | brighter | darker)", "lock the (front door | back door | doors | car)",
     "(open | close) the (garage door | garage | blinds | curtains | window | gate)",
     "turn (up | down) the (heat | ac | temperature)",
     # lists / shopping
     (3, "add {ITEMS} to (my | the) [(shopping | grocery)] list"), "add {ITEMS}",
     "put {ITEMS} on my list", "remove {ITEM} from my list", "buy {ITEMS}",
     "order {FOODS} [for (delivery | pickup)]", "order more {ITEM}",
     "get me {FOODS}", "i'll have {FOODS}",
     # navigation
     "(navigate | take me | directions) to {PLACE}", "give me directions to {PLACE}",
     "find (a | the nearest) {POI} [near me]", "show me (the way to {PLACE} | {THING2})",
     "avoid (tolls | highways)",
     # calendar / booking
     (2, "schedule a (meeting | call) [with {NAME}] [{WHENSHORT}]"),
     (2, "book a table [for {PARTY}] [(at {TIME} | tonight | tomorrow | on {DAY})]"),
     "book a (room | flight | hotel | appointment) [(for {WHEN} | to {CITY} | in {CITY})]",
     "make (a reservation | an appointment) [for {PARTY}] [{WHENSHORT}]",
     "cancel my (subscription | order | account | appointment | reservation | membership | meeting)",
     "move my (meeting | appointment) to {WHENSHORT2}",
     # customer service
     "transfer me to (an agent | a human | someone | customer service | billing | a supervisor)",
     "(let me speak | i want to speak | i'd like to speak) (to | with) (a human | a manager | someone | an agent | a person | a real person)",
     "connect me (to | with) (an agent | billing | support | someone)",
     "(go back | start over | repeat that | repeat the last step | main menu | cancel that | never mind | forget it | hold on | wait | stop)",
     "(show | tell | read) me (the menu | my balance | the options | my orders | the news | the weather)",
     "tell me (a joke | the news | a story | about {TOPIC} | the time)",
     "tell me a (short | funny | quick | good) (joke | story) [about {TOPIC}]",
     "check my (balance | order | messages | email | account)",
     "track (my package | my order | order {@d:order})", "pay my (bill | balance | rent)",
     "reset my password", "update my (address | payment method | card | email)",
     "search for {TOPIC}", "look up {TOPIC}", "open {APP}", "close {APP}", "help [me]",
     "take a (picture | photo | note)", "take a note [that {MSG}]", "charge it to my (card | account)",
     "send it to (my email | my phone | {NAME})", "use my (card | credit card | points)",
     "make it for {PARTY}", "give me (a minute | a second | {THING2})",
     (3, "(call | text | email | ask | pay | thank) (him | her | them | me | us)"), "remind (him | her | them)",
     (3, "(send | play | cancel | book | buy | order | do | repeat | save | delete | open | close | fix | change | keep | try | pause | stop | skip | read | turn off | turn on | check | confirm) (it | that | this | them)"),
     "(do it | go ahead | try again | let's do it | do that again | send it | save it | confirm it | read it again)",
     )
rule("WHEN", "at {TIME}", "tomorrow [(morning | afternoon | evening | at {TIME})]", "tonight [at {TIME}]",
     "in {DUR}", "on {DAY} [at {TIME}]", "next {DAY}", "this (afternoon | evening | weekend)",
     "every (day | morning | week) [at {TIME}]", "later [today]", "on {@date}")
rule("WHENSHORT", "tomorrow", "tonight", "on {DAY}", "at {TIME}", "on {DAY} at {TIME}", "tomorrow at {TIME}",
     "next week", "this afternoon")
rule("WHENSHORT2", "{DAY}", "tomorrow", "{TIME}", "next week", "{DAY} at {TIME}", "the afternoon")
rule("DUR", (3, "{@num:1:59} (minutes | seconds)"), "{@num:1:12} hours", "(a | one) (minute | hour)", "an hour",
     "half an hour", "an hour and a half", "{@num:1:10} and a half (minutes | hours)",
     "(thirty | forty five | ninety) seconds", "a couple of (minutes | hours)")
rule("DURSHORT", "{@num:1:60} minute", "(one | two | three) hour", "ten minute", "five minute")
rule("TIME", (6, "{@time}"), "noon", "midnight", "half past {@hourw}", "quarter (past | to) {@hourw}")
rule("TASK",
     "water the (plants | garden | lawn)", "call (my mom | my dad | {NAME} | the doctor | the bank) [back]",
     "take out the (trash | garbage | recycling)", "pick up the (kids | dry cleaning | package) [from {PLACE}]",
     "buy {ITEMS}", "pay the (rent | bills | electric bill | credit card)", "feed the (dog | cat | fish)",
     "take my (medicine | pills | vitamins)", "check the (oven | mail | laundry)",
     "send the (report | invoice | email) [to {NAME}]", "book a (dentist | doctor's | hair) appointment",
     "charge my (phone | car | laptop)", "walk the dog", "lock the (door | car)",
     "email {NAME} [about {TOPIC}]", "renew my (passport | license | subscription)",
     "go to the (gym | bank | store | post office)", "stretch", "drink water", "leave", "get gas",
     "text {NAME} [back]", "cancel my (subscription | appointment)", "clean the (kitchen | bathroom | garage)",
     "do laundry", "start dinner", "bring (an umbrella | my lunch | the charger)")
words("NAME", "mom | dad | john | sarah | mike | emily | david | lisa | alex | jessica | my wife | my husband | "
              "my boss | grandma | grandpa | kevin | maria | tom | the doctor | dr smith | jennifer | chris | "
              "amy | mark | my sister | my brother | james | anna | brian | rachel | the office | home | work | "
              "steve | linda | karen | paul | olivia | noah | my son | my daughter | the dentist | carlos | priya")
words("PLACE", "the airport | home | work | the office | the nearest gas station | starbucks | the mall | downtown | "
               "the train station | the hospital | walmart | target | the pharmacy | the gym | the library | "
               "the hotel | central park | the beach | my house | the stadium | the bank | the post office | "
               "costco | the nearest hospital | grandma's house | the school | the museum | main street | "
               "{CITY} | the city center | the bus station")
words("CITY", "paris | london | new york | chicago | seattle | boston | tokyo | denver | miami | austin | "
              "san francisco | los angeles | dallas | atlanta | berlin | rome | toronto | phoenix | portland | madrid")
words("COUNTRY", "france | australia | canada | japan | brazil | germany | italy | spain | mexico | india | "
                 "china | egypt | kenya | peru | norway | the us | the united states")
words("STORE", "pharmacy | store | bank | library | post office | grocery store | mall | gym | restaurant | "
               "office | dmv | clinic | pool | museum | cafe")
words("ITEM", "milk | eggs | bread | butter | cheese | apples | bananas | coffee | rice | chicken | "
              "paper towels | toilet paper | orange juice | yogurt | pasta | tomatoes | onions | dog food | "
              "cereal | ice cream | batteries | shampoo | toothpaste | carrots | lettuce | flour | sugar | "
              "olive oil | beer | wine | diapers | soap | avocados | potatoes | garlic | salt")
rule("ITEMS", (3, "{ITEM} [(and | or) {ITEM}]"), "{ITEM} [{ITEM} and {ITEM}]", "{ITEM} [{ITEM} {ITEM} and {ITEM}]",
     "some {ITEM}", "{@num:2:12} {ITEM}", "a (gallon | carton | bag | box | loaf | pound) of {ITEM}")
words("FOOD", "pizza | burger | cheeseburger | salad | coffee | latte | sandwich | burrito | soda | fries | "
              "pepperoni pizza | chicken sandwich | iced tea | milkshake | hot dog | taco | bagel | muffin | "
              "cappuccino | water")
words("SIZE", "small | medium | large | extra large | regular")
rule("FOODS", (3, "(a | one | two | three) [{SIZE}] {FOOD} [with {TOPPING}]"), "{FOOD}",
     "(a | one) [{SIZE}] {FOOD} and (a | two) {FOOD}", "{@num:2:6} (pizzas | burgers | coffees | tacos | sandwiches | lattes)", "the {FOOD}", "some {FOOD}")
words("TOPPING", "cheese | extra cheese | mushrooms | no onions | bacon | ketchup | oat milk | sugar | ice | "
                 "everything | fries | a side salad")
rule("MUSIC", "some (jazz | music | rock | country | classical music | hip hop | blues | pop)", "my playlist",
     "my (workout | running | chill | dinner) playlist", "the radio", "{ARTIST}", "something (relaxing | upbeat | new)",
     "(rock | classical | jazz | country) music", "the news", "a podcast", "npr", "my music",
     "music", "white noise", "the latest episode of {SHOW}", "{SHOW}", "the song {SONG}")
words("ARTIST", "taylor swift | the beatles | adele | drake | beyonce | queen | coldplay | ed sheeran | "
                "bob marley | miles davis | elvis | the rolling stones | mozart | bach | billie eilish")
words("SONG", "yesterday | hello | shape of you | bohemian rhapsody | let it be | happy birthday | "
              "hey jude | imagine | purple rain | thriller")
words("SHOW", "the daily | serial | this american life | the office | friends | planet earth")
words("SPEAKER", "the kitchen speaker | the living room speaker | spotify | my phone | the tv | all speakers | "
                 "the bedroom speaker")
rule("MSG", "i'm running late", "i'll be there in {DUR}", "i'm on my way", "call me back [(later | tonight)]",
     "happy birthday", "see you soon", "i'll be home (for dinner | late | soon | at {TIME})",
     "don't forget the {ITEM}", "the meeting is at {TIME}", "i love you", "i'm stuck in traffic",
     "i'll call you (later | tomorrow | back)", "can you pick up {ITEMS}", "dinner is ready",
     "we need {ITEMS}", "let's meet at {PLACE}", "i'm here", "i'm outside", "ok", "thanks")
words("DEVICE", "the lights | the living room lights | the kitchen lights | the fan | the tv | the heater | "
                "the air conditioner | the porch light | the coffee maker | the bedroom lamp | the lamp | "
                "the radio | the oven | the sprinklers | the dishwasher | the ac | the music | the alarm | "
                "the bathroom light | the hallway light | the lights")
words("ROOMWORD", "kitchen | living room | bedroom | bathroom | garage | office | hallway | basement | "
                  "dining room | kids room")
words("POI", "gas station | coffee shop | pharmacy | restaurant | atm | parking lot | hospital | "
             "grocery store | hotel | pizza place | charging station")
words("TOPIC", "the weather | the election | black holes | dinosaurs | the stock market | my order | "
               "the meeting | the project | history | cooking | tomorrow's game | the news | the budget | "
               "computers | cats | dogs | space | music | football")
words("APP", "spotify | the camera | settings | maps | my email | the calendar | netflix | youtube")
rule("PARTY", (2, "{@num:1:12} [people]"), "two", "four", "six", "me and my wife", "a party of {@num:2:12}",
     "{@num:2:10} adults [and {@num:1:5} kids]", "one person", "just me")
words("DAY", "monday | tuesday | wednesday | thursday | friday | saturday | sunday")
words("DAYS", "mondays | tuesdays | wednesdays | thursdays | fridays | saturdays | sundays | weekends | holidays")
words("THING", "my account | my order | my bill | my internet | my phone | my card | my password | "
               "my subscription | the app | my wifi | my tv | my payment | my delivery | my refund | "
               "my appointment | the website | my router | my login | my car")
words("THINGSHORT", "a warranty | a charger | delivery | parking | breakfast | wifi | a case | batteries")
words("THING2", "my balance | the menu | my orders | my options | the next step | the news | the time | "
                "the date | my schedule | the weather | my bill | the total | the address | the price | "
                "the number | the forecast | the difference")
words("BOOK", "hamlet | harry potter | the odyssey | war and peace")
words("PERSON", "the president | taylor swift | the ceo | my doctor | the prime minister | albert einstein")
rule("VP", "cancel my (order | subscription | account | appointment | reservation | card)",
     "return (an item | this | my order | the shoes)", "pay my (bill | balance | rent)",
     "change my (address | password | plan | flight | appointment | order | email | phone number)",
     "speak (to | with) (someone | a person | an agent | a manager) [about (my account | my bill | a charge | my order)]",
     "book a table [for {PARTY}] [at {TIME}]", "check my (balance | order | account | status)",
     "report (a problem | an outage | a lost card | a stolen card | fraud)", "make a (payment | complaint | reservation | change)",
     "update my (card | payment method | billing address | information)", "reset my password",
     "upgrade my (plan | account | phone)", "file a (complaint | claim)", "track my (package | order)",
     "talk to someone", "know (my balance | where my order is | the status of my order)",
     "order {FOODS}", "buy {ITEMS}", "get a refund", "add {ITEMS} to my order", "open an account",
     "close my account", "schedule (an appointment | a pickup | a repair) [for {WHEN}]", "go home",
     "sign up", "log in", "renew my (subscription | membership | policy)", "dispute a charge",
     "transfer money [to {NAME}]", "activate my (card | phone)")

# ---- statements
rule("STMT", (4, "{STMTCORE}"), "{STMTCORE} (please | thanks | thank you | again | today)")
rule("STMTCORE",
     (4, "(i want | i need | i would like | i'd like) to {VP}"), "i'd like (a | the) {FOOD}",
     "i need (a ride to {PLACE} | help [with {THING}] | a refund | a new card | a new password | a technician | an appointment [{WHENSHORT}])",
     "i'm calling (about | regarding) (my bill | my order [{@d:order}] | a charge on my account | my appointment | my account | the outage | a delivery)",
     "i'm calling because {CLAUSE}",
     "i was charged (twice [for (the same order | my subscription | one item)] | the wrong amount | for something i didn't order)",
     "my (internet | phone | tv | wifi | card | app | heater | account | car) (is not working | isn't working | is down [again] | keeps (crashing | dropping | freezing) | was stolen | stopped working | is broken | got locked | was hacked)",
     "the (package | order | delivery | technician | driver | food | refund) (never (arrived | came | showed up) | is late | was damaged | didn't (show up | arrive | come) | hasn't arrived [yet] | is missing)",
     "the (app | website | machine | card reader | door) keeps (crashing | freezing | beeping | failing)",
     "i lost my (card | phone | wallet | password | keys | receipt)",
     "i (already did that | tried that [already] | don't have it [with me] | don't know | can't log in | forgot my password | have a question [about {THING}] | paid already | didn't order this | never got it | got the wrong item | changed my mind)",
     "i'm (not sure | running late | on my way | at home | outside | here | still waiting | in a hurry | new here | a new customer | an existing customer | having trouble [with {THING}])",
     "it's (for my (daughter | son | wife | husband | mom | friend) | in the {ROOMWORD} | not working | too expensive | broken | urgent | a gift | fine | okay | my first time)",
     "i'll be there (around {TIME} | at {TIME} | in {DUR} | soon | tomorrow)",
     "we (need | want | have) a (table | room) for {PARTY}", "we'll be there at {TIME}",
     "that's all [i (needed | wanted | need)]", "that's (it | all | everything | fine | perfect | correct | right | wrong | too much)",
     "(it | that) doesn't work", "it didn't work", "that didn't help", "nothing happened",
     "i don't (want it | need it | understand | see it | have an account | remember)", "i didn't get (it | the code | an email | a text)",
     "i got (it | the code | a text | an email [from you])", "i have (two | three | a few) questions",
     "the (total | price | bill) was (too high | wrong | {@money})", "i (paid | spent) {@money}",
     "it (was | cost) (about | around | like) {@money}", "it was {@money}",
     "i'm {@num:18:90} [years old]", "i have {@num:2:5} (kids | dogs | questions | items)",
     "my (car | flight | train) (broke down | was cancelled | is delayed)",
     "the (lights | power | water | heat) (went out | is out | isn't working)",
     "my (son | daughter | wife | husband) (needs | wants) (a new phone | an appointment | to talk to someone)",
     "i (like | love | hate) (it | this song | {ARTIST} | that idea)", "sounds good", "that works [for me]",
     "i'll (take it | do that | wait | hold | call back [later] | think about it | pay by card)",
     "i'm (looking for | interested in) (a {POI} | {THING2} | a new phone | a cheaper plan | a job)",
     "i was wondering if (you could help me | you're open [{WHENSHORT}] | i could get a refund | there's a discount)",
     "(the | my) email is {EMAIL}", "my email address is {EMAIL}",
     "(i have | there's) a problem with {THING}", "i'm trying to {VP}", "i (just | really) (need | want) to {VP}",
     "i can't (log in | find it | hear you | pay | see it | get in | connect)",
     "it (won't | doesn't) (turn on | start | load | charge | connect | work)",
     "it says (error | my card was declined | it's not available | try again later)",
     "(he | she | my wife | my husband) (is | was) (here | late | sick | not home | on the phone)",
     "they (said | told me) (it would be here {WHENSHORT} | to call you | i'd get a refund)",
     "(this | that) is (wrong | not right | my first time | urgent | for work)",
     )
rule("EMAIL", "{EMUSER} at (gmail | yahoo | outlook | hotmail | icloud) dot (com | net)",
     "{EMUSER} at {EMUSER} dot (com | org | net)")
words("EMUSER", "john | sarah | mike | jsmith | info | anna | david | bob | lisa | contact | tom | kate")

# ---- personal info / digit strings
rule("INFO",
     (3, "my (phone | cell | mobile | callback | telephone) number is {@d:phone}"),
     (2, "(my | the) number is {@d:phone}"), "you can reach me at {@d:phone}", "call me at {@d:phone}",
     "it's {@d:phone}", "(it's | it is) area code {@d:area} {@d:phone7}",
     (3, "(my | the) order number is {@d:order}"), "(it's | it is) order [number] {@d:order}",
     "order number {@d:order}", "the reference number is {@d:order}", "my tracking number is {@d:order}",
     "my confirmation number is {@d:conf}", "the confirmation code is {@d:conf}",
     (2, "(my | the) (pin | passcode | pin number) is {@d:pin}"),
     (2, "the (code | verification code | security code | one time code) is {@d:code}"),
     "the code (i got | you sent) is {@d:code}",
     (2, "my (zip | zip code | postal code) is {@d:zip}"), "the zip code is {@d:zip}",
     (2, "my (account | member | policy | membership) number is {@d:account}"), "my account is {@d:account}",
     (2, "the last four (digits | numbers) (are | is) {@d:last4}"), "(it | the card) ends in {@d:last4}",
     "my card number is {@d:card}", "the card number is {@d:card}",
     "my (extension | room number) is {@d:ext}", "(extension | room) {@d:ext}",
     "my social is {@d:ssn}", "my social security number is {@d:ssn}",
     "my date of birth is {@date} {@year}", "i was born (on {@date} [{@year}] | in {@year})",
     "my birthday is (on {@date} | in {MONTH})",
     "(my name is | this is | it's | i'm) {FULLNAME}", "(my | the) last name is {LASTNAME}",
     "(my address is | i live at | it's) {ADDRESS}", "i'm at {ADDRESS}",
     "(the total is | my balance is | i owe) {@money}",
     "(i'm | we're) in room {@d:ext}", "my flight is {AIRLINE} {@d:flight}",
     "my license plate is {@d:plate}",
     )
words("AIRLINE", "united | delta | american | southwest | jetblue | alaska")
rule("FULLNAME", "{FIRSTNAME} [{LASTNAME}]")
words("FIRSTNAME", "john | sarah | jennifer | mike | maria | david | emily | james | priya | carlos | anna | "
                   "robert | linda | kevin | jessica | tom | lisa | mark | olivia | ahmed | wei")
words("LASTNAME", "smith | lopez | johnson | garcia | brown | lee | patel | nguyen | miller | davis | wilson | "
                  "martinez | anderson | taylor | thomas | moore | jackson | white | harris | clark")
rule("ADDRESS", "{@num:1:9999} {STREET} (street | avenue | road | drive | lane | boulevard | court) [(apartment | apt | unit | suite) {@num:1:40}]",
     "{@num:1:9999} (main | oak | elm | maple | pine | park) (street | avenue) [in {CITY}]")
words("STREET", "main | oak | elm | maple | pine | cedar | park | washington | lake | hill | sunset | river | "
                "church | mill | spring | baker | first | second | third | fifth")
words("MONTH", "january | february | march | april | may | june | july | august | september | october | "
               "november | december")

# ---- short answers
rule("ANS",
     (8, "{YESNO}"), (2, "{YESNO} {YESNO2}"),
     "(tomorrow | today | tonight | now | later | soon | next week | this weekend | yesterday | right now | asap)",
     "(tomorrow | friday | monday | saturday) (morning | afternoon | evening | night)", "this (morning | afternoon | evening)",
     "[on] {DAY} [(morning | afternoon | evening | at {TIME})]", "next {DAY}", "this {DAY}",
     "[(at | around | about)] {TIME}", "around (noon | lunch | dinner time)", "in the (morning | afternoon | evening)",
     (2, "{@num:1:20}"), "{@num:1:12} (people | of us | please | tickets | nights | adults)", "for {PARTY}",
     "the (first | second | third | last | other | blue | red | black | cheaper | bigger | big | small | new | same) one",
     "(this | that) one", "(both | neither | either | all of them | none | none of them | the first | the second)",
     "(not yet | of course | absolutely | definitely | never mind | no problem | sounds good | that works | i guess so | i think so | i don't know | not really | kind of | all good | no worries | go ahead)",
     "(by | via) (email | text | phone | mail)", "(credit | debit) card", "(cash | card | paypal | apple pay)",
     "{@money}", "{@date}", "{MONTH} {@year}", "{CITY}", "{FULLNAME}", "{ITEM}", "{ITEMS}", "{FOODS}",
     "a {SIZE} (coffee | pizza | soda | latte | tea | fries)", "(small | medium | large)",
     "{@d:order}", "{@d:phone}", "{@d:pin}", "{@d:zip}",
     "(just | only) (one | two | me | this one | the one)", "(about | around | maybe) {@num:2:100}",
     "to {PLACE}", "(at | from) {PLACE}", "{PLACE}", "(delivery | pickup | takeout | dine in)",
     "(english | spanish | french)", "(billing | sales | support | technical support)",
     "(my wife | my husband | my son | my daughter | myself | me)",
     "(the {@date} | on the {@date})",
     )
words("YESNO", "yes | no | yeah | yep | yup | nope | nah | sure | okay | ok | alright | correct | right | "
               "exactly | maybe | absolutely | definitely | please | yes please | no thanks | no thank you | "
               "of course | sure thing | that's right | that's correct | that's fine | fine | perfect | great | "
               "got it | cool | yes it is | no it's not | yes i do | no i don't | yes that's right | "
               "that's it | yes sir | no way | uh huh | mhm | sounds great | okay thanks | yes thank you")
words("YESNO2", "please | thanks | thank you | that's right | that's correct | go ahead | sure | okay | "
                "that's fine | definitely | of course | why not | i think so")

# ---- greetings / thanks
rule("GREET",
     "(hi | hello | hey) [there]", "(hi | hello | hey) {NAMEADDR}", "good (morning | afternoon | evening) [{NAMEADDR}]",
     "thank you [(so much | very much | for your help)]", "thanks [(so much | a lot | for your help | again)]",
     "(bye | goodbye) [now]", "see you [(later | soon)]", "have a (nice | good | great) (day | one | night | weekend)",
     "that's all [(for now | thanks | thank you)]", "nothing else [(thanks | thank you)]", "that's it [thanks]",
     "no that's all [thanks]", "(great | perfect | awesome) thanks", "you too", "you're welcome",
     "talk to you later", "i'm good [(thanks | thank you)]", "how are you [doing] [today]", "good how are you",
     "nice to meet you", "take care", "cheers", "bye bye", "thanks bye", "okay bye", "goodnight",
     )
words("NAMEADDR", "siri | alexa | alice | assistant | there | everyone | again")


# ------------------------------------------------------------------ numbers
ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
        "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
ORD1 = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth", "nine": "ninth",
        "twelve": "twelfth", "twenty": "twentieth", "thirty": "thirtieth"}
VAL = {w: i for i, w in enumerate(ONES)}
VAL.update({w: 10 * i for i, w in enumerate(TENS) if w})


def num_words(n: int, rng: random.Random) -> list[str]:
    if n < 20:
        return [ONES[n]]
    if n < 100:
        t, o = divmod(n, 10)
        return [TENS[t]] + ([ONES[o]] if o else [])
    if n < 1000:
        h, r = divmod(n, 100)
        out = [ONES[h], "hundred"]
        if r:
            out += (["and"] if rng.random() < 0.3 else []) + num_words(r, rng)
        return out
    if 1100 <= n < 10000 and n % 100 and rng.random() < 0.5:  # "forty two twelve" house-number style
        hi, lo = divmod(n, 100)
        return num_words(hi, rng) + (["oh", *num_words(lo, rng)] if lo < 10 else num_words(lo, rng))
    th, r = divmod(n, 1000)
    out = [*num_words(th, rng), "thousand"]
    if r:
        out += (["and"] if r < 100 and rng.random() < 0.5 else []) + num_words(r, rng)
    return out


def parse_num(ws: list[str]) -> int | None:
    """Value of a spoken cardinal prefix, None if it cannot stand alone."""
    if not ws or ws[-1] == "and":
        return None
    total, cur = 0, 0
    for w in ws:
        if w in VAL:
            cur += VAL[w]
        elif w == "oh":
            cur *= 100  # "forty two oh five" style; only used for house numbers
        elif w == "hundred":
            cur = max(cur, 1) * 100
        elif w == "thousand":
            total += max(cur, 1) * 1000
            cur = 0
        elif w == "and":
            continue
        else:
            return None
    return total + cur


def ordinal_words(n: int) -> list[str]:
    w = num_words(n, random.Random(0))
    last = w[-1]
    if last in ORD1:
        w[-1] = ORD1[last]
    elif last.endswith("y"):
        w[-1] = last[:-1] + "ieth"
    else:
        w[-1] = last + "th"
    return w


# ------------------------------------------------------------------ slots
DIGIT_KINDS = {
    # name: (lengths, predicate(k) -> prefix of k digits is a finished value)
    "phone": ([10] * 6 + [11], lambda k, L: k == L or k == 10),
    "phone7": ([7], lambda k, L: k == 7),
    "area": ([3], lambda k, L: False),          # followed by the rest of the number
    "order": (list(range(3, 10)), lambda k, L: k >= 3),
    "conf": ([6, 6, 8], lambda k, L: k == L),
    "pin": ([4, 4, 4, 6], lambda k, L: k == L),
    "code": ([4, 5, 6, 6], lambda k, L: k >= 4),
    "zip": ([5], lambda k, L: k == 5),
    "account": (list(range(8, 13)), lambda k, L: k >= 8),
    "last4": ([4], lambda k, L: k == 4),
    "card": ([16], lambda k, L: k == 16),
    "ext": ([3, 3, 4], lambda k, L: k >= 3),
    "ssn": ([9], lambda k, L: k == 9),
    "flight": ([2, 3, 3, 4], lambda k, L: k >= 2),
    "plate": ([6, 7], lambda k, L: k >= 6),
}
DIGIT_NAMES = ONES[:10]


class Ctx:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.numerals = rng.random() < P_NUMERALS


def slot_digits(ctx: Ctx, kind: str):
    rng = ctx.rng
    lens, fin = DIGIT_KINDS[kind]
    L = rng.choice(lens)
    ds = [rng.randrange(10) for _ in range(L)]
    if kind == "phone" and L == 11:
        ds[0] = 1
    if not ctx.numerals:
        ws = [("oh" if (d == 0 and rng.random() < 0.4) else DIGIT_NAMES[d]) for d in ds]
        ends = {i + 1 for i in range(L) if fin(i + 1, L)}
        return ws, ends
    # numerals: split into chunks the way Whisper might print them
    if kind in ("phone", "phone7") and rng.random() < 0.7:
        sizes = {10: [3, 3, 4], 11: [1, 3, 3, 4], 7: [3, 4]}[L]
    elif rng.random() < 0.45:
        sizes = [L]
    else:
        sizes, left = [], L
        while left:
            s = min(left, rng.choice([1, 1, 2, 3, 4]))
            sizes.append(s)
            left -= s
    ws, ends, pos = [], set(), 0
    for s in sizes:
        ws.append("".join(str(d) for d in ds[pos:pos + s]))
        pos += s
        if fin(pos, L):
            ends.add(len(ws))
    return ws, ends


def slot_num(ctx: Ctx, lo: int, hi: int):
    rng = ctx.rng
    small_first = hi > 20 and lo <= 20 and rng.random() < 0.5  # small numbers are more common
    n = rng.randint(lo, min(hi, 20)) if small_first else rng.randint(lo, hi)
    if ctx.numerals and (n > 9 or rng.random() < 0.5):
        return [str(n)], {1}
    ws = num_words(n, rng)
    ends = set()
    for k in range(1, len(ws) + 1):
        v = parse_num(ws[:k])
        if v is not None and lo <= v <= hi:
            ends.add(k)
    ends.add(len(ws))
    return ws, ends


def slot_hourw(ctx: Ctx):
    h = ctx.rng.randint(1, 12)
    return ([str(h)] if ctx.numerals and ctx.rng.random() < 0.5 else [ONES[h]]), {1}


AMPM_W = [["am"], ["pm"], ["a.m."], ["p.m."], ["in", "the", "morning"], ["in", "the", "evening"],
          ["in", "the", "afternoon"], ["at", "night"], ["tonight"], ["o'clock"]]


def slot_time(ctx: Ctx):
    rng = ctx.rng
    h = rng.randint(1, 12)
    m = rng.choice([0, 0, 0, 0, 15, 30, 30, 45, 5, 10, 20, 40, 50])
    ws: list[str] = []
    ends: set[int] = set()
    if ctx.numerals:
        ws.append(f"{h}:{m:02d}" if (m or rng.random() < 0.3) else str(h))
        ends.add(1)
    else:
        ws.append(ONES[h])
        ends.add(1)
        if m:
            mw = (["oh", ONES[m]] if m < 10 else num_words(m, rng))
            ws += mw
            for k in range(1, len(mw) + 1):
                if parse_num([w for w in mw[:k] if w != "oh"]) not in (None, 0) and mw[k - 1] != "oh":
                    ends.add(1 + k)
    if rng.random() < 0.45:
        suf = rng.choice(AMPM_W)
        if suf == ["o'clock"] and m:
            suf = ["pm"]
        ws += suf
        ends.add(len(ws))
    return ws, ends


def slot_date(ctx: Ctx):
    rng = ctx.rng
    d = rng.randint(1, 31)
    month = rng.choice(R["MONTH"])[1]
    r = rng.random()
    if ctx.numerals:
        sfx = "th" if 11 <= d <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")
        if r < 0.6:
            return [month, f"{d}{sfx}" if rng.random() < 0.7 else str(d)], {2}
        if r < 0.8:
            return ["the", f"{d}{sfx}"] + (["of", month] if rng.random() < 0.5 else []), {2, 4}
        return [f"{rng.randint(1, 12)}/{d}"], {1}
    dw = ordinal_words(d) if rng.random() < 0.8 else num_words(d, rng)
    if r < 0.65:
        ws = [month, *dw]
        ends = {1 + k for k in range(1, len(dw) + 1) if k == len(dw) or dw[k - 1] in ("twenty", "thirty")}
        return ws, ends
    ws = ["the", *ordinal_words(d)]
    ends = {len(ws)}
    if rng.random() < 0.5:
        ws += ["of", month]
        ends.add(len(ws))
    return ws, ends


def slot_year(ctx: Ctx):
    rng = ctx.rng
    y = rng.randint(1940, 2025)
    if ctx.numerals:
        return [str(y)], {1}
    if (y >= 2000 and y < 2010) or (y >= 2000 and rng.random() < 0.4):
        ws = ["two", "thousand"]
        r = y - 2000
        if r:
            ws += (["and"] if rng.random() < 0.3 else []) + num_words(r, rng)
        ends = {k for k in range(2, len(ws) + 1) if ws[k - 1] != "and"}
        return ws, ends
    hi, lo = divmod(y, 100)
    ws = num_words(hi, rng)
    n_hi = len(ws)
    lw = (["oh", ONES[lo]] if 0 < lo < 10 else (["hundred"] if lo == 0 else num_words(lo, rng)))
    ws += lw
    ends = {n_hi + k for k in range(1, len(lw) + 1) if lw[k - 1] != "oh"}
    return ws, ends


def slot_money(ctx: Ctx):
    rng = ctx.rng
    dollars = rng.choice([rng.randint(1, 20), rng.randint(1, 200), rng.randint(1, 2000)])
    cents = rng.choice([0, 0, 0, 99, 50, rng.randint(1, 99)])
    if ctx.numerals:
        if rng.random() < 0.7:
            return [f"${dollars}" + (f".{cents:02d}" if cents else "")], {1}
        return [str(dollars), rng.choice(["dollars", "bucks"])], {2}
    ws = [*num_words(dollars, rng), rng.choice(["dollars", "dollars", "bucks"])]
    ends = {len(ws)}
    if cents and ws[-1] == "dollars" and rng.random() < 0.5:
        cw = num_words(cents, rng)
        ws += ["and", *cw, "cents"]
        ends.add(len(ws))
    return ws, ends


SLOTS = {
    "d": slot_digits,
    "num": lambda ctx, lo, hi: slot_num(ctx, int(lo), int(hi)),
    "time": slot_time,
    "hourw": slot_hourw,
    "date": slot_date,
    "year": slot_year,
    "money": slot_money,
}

# ------------------------------------------------------------------ DSL parsing / expansion
_TOK = re.compile(r"\{[^}]+\}|\[|\]|\(|\)|\||[^\s\[\]()|{}]+")


@cache
def parse(template: str):
    toks = _TOK.findall(template)
    node, pos = _parse_alt(toks, 0)
    if pos != len(toks):
        raise ValueError(f"bad template {template!r} at {pos}")
    return node


def _parse_alt(toks, pos):
    seqs = []
    seq, pos = _parse_seq(toks, pos)
    seqs.append(seq)
    while pos < len(toks) and toks[pos] == "|":
        seq, pos = _parse_seq(toks, pos + 1)
        seqs.append(seq)
    return (("alt", seqs) if len(seqs) > 1 else seqs[0]), pos


def _parse_seq(toks, pos):
    items = []
    while pos < len(toks) and toks[pos] not in ("]", ")", "|"):
        t = toks[pos]
        if t in ("[", "("):
            node, pos = _parse_alt(toks, pos + 1)
            close = "]" if t == "[" else ")"
            if pos >= len(toks) or toks[pos] != close:
                raise ValueError(f"unclosed {t} in {toks}")
            items.append((node, t == "["))
            pos += 1
        elif t.startswith("{"):
            items.append((("ref", t[1:-1]), False))
            pos += 1
        else:
            items.append((("w", t), False))
            pos += 1
    return ("seq", items), pos


def choose(rng, alts):
    tot = sum(w for w, _ in alts)
    x = rng.random() * tot
    for w, a in alts:
        x -= w
        if x <= 0:
            return a
    return alts[-1][1]


def expand(node, ctx: Ctx):
    """-> (words, ends): ends = set of k such that words[:k] may end this constituent."""
    kind = node[0]
    if kind == "w":
        return [node[1]], {1}
    if kind == "ref":
        name = node[1]
        if name.startswith("@"):
            parts = name[1:].split(":")
            return SLOTS[parts[0]](ctx, *parts[1:])
        return expand(parse(choose(ctx.rng, R[name])), ctx)
    if kind == "alt":
        return expand(ctx.rng.choice(node[1]), ctx)
    # seq
    children = []
    for sub, opt in node[1]:
        if opt and ctx.rng.random() >= P_OPT:
            continue
        w, e = expand(sub, ctx)
        if w:
            children.append((w, e, opt))
    words_out: list[str] = []
    ends: set[int] = set()
    for j, (w, e, _opt) in enumerate(children):
        off = len(words_out)
        words_out += w
        if all(c[2] for c in children[j + 1:]):
            ends |= {off + x for x in e}
    return words_out, ends


def generate_utterance(rng: random.Random):
    ctx = Ctx(rng)
    ws, ends = expand(parse("{UTT}"), ctx)
    ws = " ".join(ws).split()  # multiword vocabulary entries are already split by the parser
    return ws, ends


# ------------------------------------------------------------------ Whisper-ish surface form
def whisperize(ws: list[str], rng: random.Random, is_question: bool) -> str:
    """Optional capitalisation + invented punctuation. The classifier ignores it; it is here so that the
    data looks like real transcripts and so that tests can check the invariance."""
    if rng.random() < 0.5:
        return " ".join(ws)
    out = []
    for i, w in enumerate(ws):
        if w == "i" or w.startswith("i'"):
            w = "I" + w[1:]
        if i == 0:
            w = w[:1].upper() + w[1:]
        out.append(w)
        if i == 0 and len(ws) > 1 and ws[0] in ("um", "uh", "so", "well", "yes", "no", "okay", "hi", "hello",
                                                "yeah", "oh", "actually", "hmm") and rng.random() < 0.7:
            out[-1] += ","
    s = " ".join(out)
    r = rng.random()
    s += ("?" if is_question and r < 0.7 else "." if r < 0.85 else "")
    return s


QSTART = {"what", "what's", "where", "where's", "when", "who", "why", "how", "how's", "is", "are", "can", "could",
          "do", "does", "did", "will", "would", "which", "has"}


def build(n: int, seed: int):
    """Returns rows (label, normalised_key, surface_text)."""
    rng = random.Random(seed)
    complete_keys: set[tuple] = set()
    rows = []
    for _ in range(n):
        ws, ends = generate_utterance(rng)
        isq = ws[0] in QSTART
        for k in range(1, len(ws) + 1):
            lab = 1 if k in ends else 0
            surface = whisperize(ws[:k], rng, isq)
            key = tuple(normalize(" ".join(ws[:k])))
            if not key:
                continue
            if lab:
                complete_keys.add(key)
            rows.append((lab, key, surface))
    # cross-template relabel + de-duplicate on the normalised word sequence
    best: dict[tuple, tuple] = {}
    for lab, key, surface in rows:
        if key in complete_keys:
            lab = 1
        if key not in best:
            best[key] = (lab, surface)
    return [(lab, key, s) for key, (lab, s) in best.items()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=60000, help="number of complete utterances to sample")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="data/train.tsv")
    ap.add_argument("--exclude", default=None, help="TSV whose keys must not appear in the output (for a val split)")
    a = ap.parse_args()
    data = build(a.n, a.seed)
    if a.exclude:
        ex = set()
        with open(a.exclude) as f:
            for line in f:
                if line.startswith("label\t"):
                    continue
                ex.add(tuple(normalize(line.rstrip("\n").split("\t", 1)[1])))
        data = [d for d in data if d[1] not in ex]
    with open(a.out, "w") as f:
        f.write("label\ttext\n")
        for lab, _key, s in data:
            f.write(f"{lab}\t{s}\n")
    n1 = sum(d[0] for d in data)
    print(f"wrote {len(data)} rows ({n1} complete, {len(data) - n1} cut) to {a.out}")


if __name__ == "__main__":
    main()
